#!/bin/sh
# The apt side of `make deps` on the distributions the project supports:
# Debian 12 (bookworm) and 13 (trixie), Ubuntu 22.04 (jammy) and 24.04
# (noble), told apart by /etc/os-release (or the file in $OS_RELEASE).
#
#   mk/distro.sh python              the Python to build .venv with
#   mk/distro.sh packages PKG...     PKG... plus what this distribution needs besides
#   mk/distro.sh install PKG...      install the missing ones (idempotent; as root)
#   DRY_RUN=1 mk/distro.sh install PKG...   print the plan, change nothing
#
# Where the names differ: the package names the Makefile lists (APT_PKGS) are
# the same on all four; what differs is Python.  The project needs 3.11+,
# which is python3 on Debian 12 (3.11), Debian 13 (3.13) and Ubuntu 24.04
# (3.12), but Ubuntu 22.04's python3 is 3.10: there it takes python3.11 and
# python3.11-venv (jammy's universe) and builds .venv with python3.11.
# The cluster lock service (topology cluster_lock = "etcd") is etcd-server
# with python3-etcd for ctdb's own ctdb_etcd_lock helper and samba-common-bin
# for the testparm it asks for the netbios name, under the same
# names everywhere (listed in APT_PKGS; etcd's v2 API, which the helper
# needs, is switched on by the harness with --enable-v2).
# ctdb comes in four releases this way (4.15 jammy, 4.17 bookworm, 4.19
# noble, 4.22 trixie), all of which the ctdb backend and parser read.
set -eu

OS_RELEASE=${OS_RELEASE:-/etc/os-release}
SUPPORTED="Debian 12/13, Ubuntu 22.04/24.04"

die() { echo "mk/distro.sh: $*" >&2; exit 2; }

[ -r "$OS_RELEASE" ] || die "cannot read $OS_RELEASE (set OS_RELEASE=FILE to name another)"
# os-release is shell-quoted KEY=value lines; read only the two keys, never source it
field() { sed -n "s/^$1=//p" "$OS_RELEASE" | head -n 1 | tr -d "\"'"; }
ID=$(field ID)
VERSION_ID=$(field VERSION_ID)

UNSUPPORTED=""
# Ubuntu ships Chromium only as a snap (its apt packages are snap installers,
# useless in a runner): there the browser test uses the Google Chrome and
# chromedriver that GitHub's Ubuntu images carry (tests/report/test_browser.py).
UBUNTU_DROP="chromium chromium-driver"
case "$ID $VERSION_ID" in
  "debian 12"|"debian 13") PY=python3; EXTRA=""; DROP="" ;;
  "ubuntu 24.04") PY=python3; EXTRA=""; DROP="$UBUNTU_DROP" ;;
  "ubuntu 22.04") PY=python3.11; EXTRA="python3.11 python3.11-venv"; DROP="$UBUNTU_DROP" ;;
  *) PY=python3; EXTRA=""; DROP=""
     UNSUPPORTED="$ID $VERSION_ID (from $OS_RELEASE) is not supported ($SUPPORTED); install\
 these by hand (or the same under your distribution's names) and Python 3.11+, then make deps PYTHON=python3.X:" ;;
esac

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  python) echo "$PY" ;;
  packages) echo "$* $EXTRA" | xargs -n 1 | awk -v drop=" $DROP " \
              'index(drop, " " $0 " ") == 0 && !seen[$0]++' | xargs ;;
  install)
    want=$(sh "$0" packages "$@")
    missing=""
    for p in $want; do
      dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' \
        || missing="$missing $p"
    done
    # elsewhere everything must be there already: nothing is guessed
    [ -z "$UNSUPPORTED" ] || [ -z "$missing" ] || die "$UNSUPPORTED$missing"
    if [ -n "${DRY_RUN:-}" ]; then
      echo "distro: $ID $VERSION_ID (from $OS_RELEASE)${UNSUPPORTED:+, not supported: all there already}"
      echo "python: $PY"
      echo "apt packages: $want"
      echo "missing here:${missing:- none}"
      [ -z "$missing" ] || echo "would run: apt-get update && apt-get install -y --no-install-recommends$missing"
      exit 0
    fi
    [ -n "$missing" ] || exit 0
    echo "installing:$missing"
    # ctdb's postinst must not start a daemon in the host namespace: a temporary
    # policy-rc.d refuses service starts while apt runs (an existing one is kept).
    own=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; own=1
    fi
    rc=0
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends $missing >/dev/null; } || rc=$?
    [ $own = 1 ] && rm -f /usr/sbin/policy-rc.d
    exit $rc ;;
  *) die "usage: mk/distro.sh python | packages PKG... | install PKG... (DRY_RUN=1: print only)" ;;
esac
