# Bond tests in a throwaway qemu VM, for hosts whose kernel has no bonding
# driver (included by the top-level Makefile).  The VM boots Debian's stock
# kernel (apt-get download + dpkg -x into .cache/vm/, never installed) and
# runs the host's own userland read-only over 9p; see harness/vm/runner.py.
#
#   make test-vm                      bond and netem tests (needs_bonding, needs_full_kernel) in the VM
#   make test-vm VM_PYTEST_ARGS='-k x' extra pytest arguments for the guest
#   make test-vm-runner               tests of the VM runner itself (boot VMs on the host)
#   make test-vm-auto                 test-vm only if `probe-bonding` says this kernel can't bond
#   make test-host-and-vm             test-host, then test-vm-runner, with test-vm-auto alongside
#   make test VM_RUNNER=0             on a kernel that bonds, leave out test-vm-runner (the
#                                     GitHub workflow: Ubuntu's archive has no Debian kernel)
#
# The VM has no network device (-nic none) and is killed by pid at VM_TIMEOUT
# seconds (exit 124), on Ctrl-C, and if the runner dies.

PY          ?= python3
VM_APT_PKGS := qemu-system-x86 busybox-static kmod
VM_TIMEOUT  ?= 2400
VM_ACCEL    ?= auto
# pytest-timeout per test inside the guest: emulation is ~20x slower than the host
VM_PYTEST_ARGS ?= --timeout=1800 --durations=0

# test-host-and-vm: the VM's console goes here and is shown once the host side is done;
# qemu runs at this niceness so the host suite's timing tests come first
VM_LOG      ?= artifacts/vm-console.log
VM_NICE     ?= 10

.PHONY: vm-deps vm-prepare test-vm test-vm-runner test-vm-auto test-host-and-vm

# apt-get update only when a package is missing; installing is then idempotent.
vm-deps:
	@missing=$$(for p in $(VM_APT_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	    | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $(VM_APT_PKGS) >/dev/null; \
	fi

# Kernel download/unpack and initramfs build (cached; test-vm does it too).
vm-prepare: deps vm-deps
	$(PY) -m harness.vm prepare

test-vm: deps vm-deps
	$(PY) -m harness.vm pytest --timeout $(VM_TIMEOUT) --accel $(VM_ACCEL) -- $(VM_PYTEST_ARGS)

# three independent boots, side by side
test-vm-runner: deps vm-deps
	$(PY) -m pytest -n 3 -p no:cacheprovider -m "vm_runner and not long" tests/vm

test-vm-auto: deps
	@if $(PY) -m harness.vm probe-bonding; then \
	  echo "bond tests run on this host (test-host); no VM needed"; \
	else \
	  $(MAKE) --no-print-directory test-vm; \
	fi

# The host suite waits on monitor intervals most of the time (about half a
# core of the two) and the emulated VM keeps about one core busy, so they run
# side by side: the VM in the background, its console into VM_LOG; in front
# the host suite, then the VM runner's own tests (their boots overlap the end
# of the bond tests'). The host suite starts once the runner has measured the
# host's side of the time scale (it logs "booting" right after): measured
# while the suite starts up, the host would look slow and the guest's scale,
# hence every slack in the VM, come out too small. qemu runs at VM_NICE: a
# 100 ms flap grid on the host was seen 63 ms late with the VM at equal
# priority (load 4.6), while the guest scales its slacks to its measured
# speed (measured as the suite starts up, its slowest). Exit status: 0 only if
# every part passed. The background runner is stopped by its pid if this
# recipe is interrupted (it kills its qemu itself).
test-host-and-vm: deps
	@if $(PY) -m harness.vm probe-bonding; then \
	  echo "bond tests run on this host (test-host); no VM needed"; \
	  $(MAKE) --no-print-directory test-host || exit $$?; \
	  if [ "$(VM_RUNNER)" = 0 ]; then echo "VM_RUNNER=0: the VM runner's own tests left out"; \
	  else $(MAKE) --no-print-directory test-vm-runner; fi; \
	  exit $$?; \
	fi; \
	$(MAKE) --no-print-directory vm-deps || exit $$?; \
	mkdir -p $(dir $(VM_LOG)); \
	$(PY) -m harness.vm pytest --timeout $(VM_TIMEOUT) --accel $(VM_ACCEL) --nice $(VM_NICE) \
	  -- $(VM_PYTEST_ARGS) >$(VM_LOG) 2>&1 </dev/null & vm=$$!; \
	trap 'kill $$vm 2>/dev/null; exit 130' INT TERM HUP; \
	echo "bond tests in a VM in the background (runner pid $$vm, console: $(VM_LOG))"; \
	while kill -0 $$vm 2>/dev/null && ! grep -q '^FTH-VM: booting' $(VM_LOG); do sleep 0.2; done; \
	$(MAKE) --no-print-directory test-host; host=$$?; \
	$(MAKE) --no-print-directory test-vm-runner; runner=$$?; \
	echo "== bond tests in the VM (console: $(VM_LOG)) =="; \
	tail -n +1 -f --pid=$$vm $(VM_LOG); wait $$vm; vmrc=$$?; \
	echo "test-host exit $$host, test-vm-runner exit $$runner, test-vm exit $$vmrc"; \
	[ $$host = 0 ] && [ $$runner = 0 ] && [ $$vmrc = 0 ]
