"""Scenario files: the loader builds the model from good files, and a malformed
file is exactly one line naming the file, the step (number and id) and the
key, with the fix; `harness run` exits 2 on it without a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.scenario.loader import load_scenario
from harness.scenario.model import Bound, ExpectStep, FaultStep, UndoStep, WaitStep
from harness.scenario.values import ScenarioError

FILES = Path(__file__).resolve().parents[1] / "scenarios" / "files"
HEAD = 'name = "t"\ndescription = "a test"\n'
TOPOLOGY = """
[topology]
public_addresses = ["203.0.113.201/24 eth1", "203.0.113.202/24 eth1"]
[topology.networks.private]
subnet = "198.18.0.0/24"
[topology.networks.public]
subnet = "203.0.113.0/24"
[topology.interfaces.eth0]
network = "private"
[topology.interfaces.eth1]
network = "public"
"""
CUT = '[[steps]]\nfault = "pull-cable"\nid = "cut"\nnode = 2\nport = "eth1"\n'
BAD = ('[[steps]]\nexpect = "flag"\nid = "bad"\nnode = 2\nflag = "UNHEALTHY"\nafter = "cut"\n'
       'within = [0, "detection"]\n')


def write(tmp_path: Path, text: str, name: str = "scenario_t.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def scenario_text(top: str = "", steps: str = CUT) -> str:
    return HEAD + top + TOPOLOGY + steps


def test_every_shipped_file_loads():
    files = sorted(FILES.glob("scenario_*.toml"))
    assert len(files) >= 5
    names = {load_scenario(f).name for f in files}
    assert {"seed", "flap", "partition", "partially-online", "bond"} <= names


def test_a_whole_file_becomes_the_model(tmp_path):
    path = write(tmp_path, scenario_text(
        'implementations = ["native"]\nslack = 2\n'
        'duplicates_allowed_on = ["non-leader"]\nduplicates_reason = "isolated"\n'
        '[tunables]\nmonitorinterval = 3\n[script_options]\nCTDB_X = "yes"\n',
        CUT + 'at = 1.5\nfor = 4\n' + BAD
        + '[[steps]]\nexpect = "moved"\nnode = 2\nafter = "cut"\n'
          'within = [0, "detection + takeover + 0.5"]\nflagged = "bad"\n'
        + '[[steps]]\nexpect = "none"\nkind = "addr.add"\nmatch = {ns = "n2"}\n'
          'after = "cut.undo"\nfor = "gap"\n'
        + '[[steps]]\nwait = 0.5\n'
        + '[[steps]]\nfault = "kill"\nid = "k"\nnode = "holder:203.0.113.201"\n'
          'on = {kind = "flags", node = 1, has = "UNHEALTHY", offset = 0.5}\n'
        + '[[steps]]\nundo = "k"\n'))
    s = load_scenario(path)
    assert (s.name, s.implementations, s.slack, s.topology.nodes) == ("t", ("native",), 2.0, 3)
    assert s.tunables == {"MonitorInterval": 3} and s.script_options == {"CTDB_X": "yes"}
    assert s.duplicates_allowed_on == ("non-leader",) and s.invariants
    cut, bad, moved, none, wait, kill, undo = s.steps
    assert isinstance(cut, FaultStep) and cut.args == {"node": 2, "port": "eth1"}
    assert (cut.at, cut.for_s, cut.on) == (1.5, 4.0, None)
    assert isinstance(bad, ExpectStep) and bad.within == (Bound((), 0.0, "0"),
                                                          Bound(("detection",), 0.0, "detection"))
    assert isinstance(moved, ExpectStep) and moved.flagged == "bad"
    assert moved.within is not None and moved.within[1].names == ("detection", "takeover")
    assert moved.within[1].value({"detection": 4.0, "takeover": 2.0}) == 6.5
    assert isinstance(none, ExpectStep) and none.for_ == Bound(("gap",), 0.0, "gap")
    assert none.after == "cut.undo" and none.match == {"ns": "n2"}
    assert isinstance(wait, WaitStep) and wait.seconds.seconds == 0.5
    assert isinstance(kill, FaultStep) and kill.on is not None and kill.on.has == "UNHEALTHY"
    assert isinstance(undo, UndoStep) and undo.target == "k"
    assert s.uses_roles() and s.public_ips() == ["203.0.113.201", "203.0.113.202"]
    assert bad.describe() == "UNHEALTHY on node 2 after cut"
    assert kill.describe({"holder:203.0.113.201": 0}) == \
        "fault kill node=0 (holder:203.0.113.201) on flags node 1 has UNHEALTHY +0.5 s"


def test_event_mode_runs_on_native_only(tmp_path):
    s = load_scenario(write(tmp_path, scenario_text("event_mode = true\n")))
    assert s.event_mode and s.implementations == ("native",)


def test_topology_file_is_relative_to_the_scenario(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.toml").write_text((FILES / "seed-plain.toml").read_text())
    s = load_scenario(write(tmp_path, HEAD + 'topology = {file = "sub/c.toml"}\n' + CUT))
    assert s.topology_source == "file sub/c.toml" and not s.topology.has_bonds


# (top-level keys, steps, the message after "<file>: ")
MALFORMED = {
    "not_toml": ("name = \n", None,
                 "not valid TOML (Invalid value (at line 1, column 8)); fix the syntax"),
    "unknown_key": ("tunable = 3\n", CUT,
                    "tunable: unknown key; a scenario file has name, description, topology, "
                    "implementations, event_mode, tunables, script_options, slack, invariants, "
                    "invariants_reason, duplicates_allowed_on, duplicates_reason, steps"),
    "no_topology": (HEAD + CUT, None,
                    'topology: missing; describe the cluster: a [topology] table (the keys of a '
                    'topology file), topology = {file = "cluster.toml"}, or topology = '
                    '{ctdb = "etc-ctdb", bonds = ["bond0=active-backup:eth1,eth2"]}'),
    "no_steps": ("", "",
                 'steps: missing or empty; add [[steps]] tables: fault = "...", expect = "...", '
                 'undo = "ID" or wait = SECONDS'),
    "wrong_type": ("slack = \"a lot\"\n", CUT,
                   'slack: "a lot" is not a number of seconds 0 or more; write e.g. 2 or 0.5'),
    "step_unknown_key": ("", CUT + "nod = 2\n",
                         'step 1 (id "cut"): nod: not a parameter of pull-cable; a pull-cable '
                         "step takes fault, id, at, on, for, node, port"),
    "unknown_fault": ("", '[[steps]]\nfault = "pull-cabel"\nnode = 2\n',
                      'step 1: fault: "pull-cabel" is not a fault kind; use one of public-link, '
                      "pull-cable, plug, admin-down, bond-slave-lost, all-slaves-lost, "
                      "delete-interface, isolate, partition, one-way-loss, packet-loss, kill, "
                      "hang, stop, restart, hang-monitor, fail-event, flap"),
    "missing_parameter": ("", '[[steps]]\nfault = "pull-cable"\nid = "cut"\nnode = 2\n',
                          'step 1 (id "cut"): port: missing; pull-cable needs port (the '
                          "node-side interface(s) whose cable it is)"),
    "parameter_value": ("", '[[steps]]\nfault = "packet-loss"\nnode = 2\nport = "eth1"\n'
                            "percent = 250\n",
                        "step 1: percent: 250 is not a percentage from 1 to 100; give the share "
                        "dropped, 1-100"),
    "node_range": ("", '[[steps]]\nfault = "kill"\nnode = 5\n',
                   "step 1: node: 5 is not a node of this topology (3 nodes); use a pnn from 0 "
                   "to 2, leader, non-leader or holder:IP (IP a public address)"),
    "port": ("", '[[steps]]\nfault = "pull-cable"\nid = "cut"\nnode = 2\nport = "eth9"\n',
             'step 1 (id "cut"): port: "eth9" is not a port of this topology; use one of '
             "eth0, eth1 (a bond's cables are its slaves)"),
    "bound_name": ("", CUT + BAD.replace('"detection"', '"detectoin"'),
                   'step 2 (id "bad"): within: "detectoin" is not a bound; a bound is seconds '
                   "or detection, takeover, recovery, keepalive, gap, startup, joined with + "
                   '(e.g. "detection+takeover")'),
    "after_unknown": ("", CUT + BAD.replace('after = "cut"', 'after = "cutt"'),
                      'step 2 (id "bad"): after: "cutt" is not the id of an earlier step; use '
                      "start, cut"),
    "after_not_undone": ("", CUT + '[[steps]]\nexpect = "ok"\nnode = 2\nafter = "cut.undo"\n'
                                   'within = [0, "recovery"]\n',
                         'step 2: after: fault "cut" is not undone before this step; give it '
                         'for = SECONDS, or add an undo = "cut" step before this one'),
    "within_shape": ("", CUT + '[[steps]]\nexpect = "ok"\nnode = 2\nafter = "cut"\n'
                               'within = "recovery"\n',
                     'step 2: within: "recovery" is not [lo, hi]; write within = [lo, hi], '
                     'e.g. [0, "detection"]; a bound is seconds or detection, takeover, '
                     'recovery, keepalive, gap, startup, joined with + (e.g. '
                     '"detection+takeover")'),
    "unknown_expectation": ("", CUT + '[[steps]]\nexpect = "unhealthy"\nnode = 2\n'
                                      'after = "cut"\nwithin = [0, 1]\n',
                            'step 2: expect: "unhealthy" is not an expectation; use one of '
                            "flag, ok, moved, reachable, converged, event, none"),
    "none_within": ("", CUT + '[[steps]]\nexpect = "none"\nflag = "UNHEALTHY"\nnode = 2\n'
                              'after = "cut"\nwithin = [0, 1]\n',
                    'step 2: within: not a key of expect = "none"; expect = "none" takes '
                    "expect, id, after, for, flag, kind, node, match, by; how long nothing "
                    "may happen is `for`"),
    "flag_name": ("", CUT + BAD.replace('"UNHEALTHY"', '"UNHEALTY"'),
                  'step 2 (id "bad"): flag: "UNHEALTY" is not a node flag; use one of '
                  "DISCONNECTED, UNKNOWN, DISABLED, BANNED, UNHEALTHY, DELETED, STOPPED, "
                  'INACTIVE, PARTIALLYONLINE (a node back to OK is expect = "ok")'),
    "tunable": ("[tunables]\nMonitorIntervall = 3\n", CUT,
                "tunables.MonitorIntervall: not a CTDB 4.17 tunable (or obsolete); `ctdb "
                "listvars` names them, e.g. MonitorInterval"),
    "invariants_off_without_reason": ("invariants = false\n", CUT,
                                      "invariants_reason: missing: invariants = false needs a "
                                      'reason; say why, e.g. invariants_reason = "the daemon '
                                      'is killed on purpose"'),
    "event_mode_on_ctdb": ('event_mode = true\nimplementations = ["ctdb"]\n', CUT,
                           "event_mode: only the native implementation has an event-driven "
                           'monitor; set implementations = ["native"]'),
    "implementation": ('implementations = ["ctbd"]\n', CUT,
                       'implementations: "ctbd" is not an implementation; use a list of '
                       'native, ctdb, e.g. implementations = ["native"]'),
    "duplicate_id": ("", CUT + CUT,
                     'step 2 (id "cut"): id: already names step 1; give every step its own id'),
    "two_kinds": ("", '[[steps]]\nfault = "kill"\nexpect = "ok"\n',
                  "step 1: fault/expect: a step is exactly one of fault, undo, expect, wait; "
                  "split it into one step each"),
    "undo_unknown": ("", CUT + '[[steps]]\nundo = "cat"\n',
                     'step 2: undo: "cat" is not the id of an earlier fault; use one of cut'),
    "trigger_key": ("", '[[steps]]\nfault = "kill"\nnode = 2\non = {kind = "flags", nod = 1}\n',
                    "step 1: on.nod: unknown key; on takes kind, node, has, offset, timeout, "
                    "match"),
    "role": ("", '[[steps]]\nfault = "kill"\nnode = "follower"\n',
             'step 1: node: "follower" is not a node; use a pnn from 0 to 2, leader, '
             "non-leader or holder:IP (IP a public address)"),
    "flagged": ("", CUT + '[[steps]]\nexpect = "moved"\nnode = 2\nafter = "cut"\n'
                          'within = [0, 5]\nflagged = "cut"\n',
                'step 2: flagged: "cut" is not the id of an earlier flag expectation; use one '
                "of (none yet: give a flag expectation an id)"),
    "at_order": ("", CUT + "at = 5\n" + '[[steps]]\nfault = "kill"\nnode = 1\nat = 2\n',
                 "step 2: at: 2 is earlier than step 1's at = 5; steps run in file order: "
                 "order the faults by `at`"),
    "flap_for": ("", '[[steps]]\nfault = "flap"\nnode = 2\nport = "eth1"\nfor = 3\n',
                 "step 1: for: a flap ends by itself after `count` cycles; drop `for` (an "
                 "undo step stops a flap early)"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_is_one_line_naming_file_step_and_key(case, tmp_path):
    top, steps, message = MALFORMED[case]
    text = top if steps is None else scenario_text(top, steps)
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    assert str(e.value) == f"{path}: {message}"
    assert "\n" not in str(e.value)


def test_topology_errors_keep_their_own_line(tmp_path):
    path = write(tmp_path, HEAD + "[topology]\nnodes = 0\n" + CUT)
    with pytest.raises(ScenarioError, match=r"^\S+: topology: nodes = 0; use 1\.\.200$"):
        load_scenario(path)
    path = write(tmp_path, HEAD + 'topology = {file = "nope.toml"}\n' + CUT)
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    assert str(e.value) == (f"{path}: topology.file: {tmp_path}/nope.toml: cannot read (No such "
                            "file or directory); check the path")


def test_topology_from_a_field_clusters_etc_ctdb(tmp_path):
    shutil.copytree(Path(__file__).parent / "data" / "etc-ctdb" / "four-nodes",
                    tmp_path / "etc-ctdb")
    path = write(tmp_path, HEAD + 'topology = {ctdb = "etc-ctdb", bonds = '
                                  '["eth1=active-backup:eth3,eth4"]}\n'
                                  "[tunables]\nMonitorInterval = 3\n"
                                  '[[steps]]\nfault = "kill"\nnode = 3\n')
    s = load_scenario(path)
    assert s.topology_source == "ctdb etc-ctdb" and s.topology.nodes == 4
    assert s.topology.interface("eth1").bond is not None
    assert s.tunables["MonitorInterval"] == 3  # the file's own value over the imported one
    path = write(tmp_path, HEAD + 'topology = {ctdb = "etc-ctdb", bonds = ["bond0"]}\n' + CUT)
    with pytest.raises(ScenarioError) as e:
        load_scenario(path)
    assert str(e.value).startswith(f"{path}: topology.bonds: 'bond0': no '=' after the bond's "
                                   "name; write e.g. bond0=active-backup:eth1,eth2")
    path = write(tmp_path, HEAD + 'topology = {ctdb = "nowhere"}\n' + CUT)
    with pytest.raises(ScenarioError, match='topology.ctdb: "nowhere" is not a directory'):
        load_scenario(path)


def test_unreadable_file(tmp_path):
    with pytest.raises(ScenarioError) as e:
        load_scenario(tmp_path / "missing.toml")
    assert str(e.value) == f"{tmp_path}/missing.toml: cannot read (No such file or directory); " \
                           "check the path"


@pytest.mark.parametrize("case", ["unknown_fault", "bound_name", "after_unknown"])
def test_harness_run_exits_2_with_one_line(case, tmp_path):
    top, steps, message = MALFORMED[case]
    path = write(tmp_path, scenario_text(top, steps))
    r = subprocess.run([sys.executable, "-m", "harness", "run", str(path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr == f"harness run: {path}: {message}\n"
    assert r.stdout == "" and "Traceback" not in r.stderr


def test_harness_run_refuses_an_implementation_the_file_excludes(tmp_path):
    path = write(tmp_path, scenario_text('implementations = ["native"]\n'))
    r = subprocess.run([sys.executable, "-m", "harness", "run", str(path), "--backend", "ctdb"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr == (f"harness run: {path} runs on native only (implementations = "
                        "['native']); drop --backend ctdb\n")
