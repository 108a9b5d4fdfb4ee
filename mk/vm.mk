# Bond tests in a throwaway qemu VM, for hosts whose kernel has no bonding
# driver (included by the top-level Makefile).  The VM boots Debian's stock
# kernel (apt-get download + dpkg -x into .cache/vm/, never installed) and
# runs the host's own userland read-only over 9p; see harness/vm/runner.py.
#
#   make test-vm                      bond and netem tests (needs_bonding, needs_full_kernel) in the VM
#   make test-vm VM_PYTEST_ARGS='-k x' extra pytest arguments for the guest
#   make test-vm-runner               tests of the VM runner itself (boot VMs on the host)
#   make test-vm-auto                 test-vm only if `probe-bonding` says this kernel can't bond
#
# The VM has no network device (-nic none) and is killed by pid at VM_TIMEOUT
# seconds (exit 124), on Ctrl-C, and if the runner dies.

PY          ?= python3
VM_APT_PKGS := qemu-system-x86 busybox-static kmod
VM_TIMEOUT  ?= 2400
VM_ACCEL    ?= auto
# pytest-timeout per test inside the guest: emulation is ~20x slower than the host
VM_PYTEST_ARGS ?= --timeout=1800

.PHONY: vm-deps vm-prepare test-vm test-vm-runner test-vm-auto

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

test-vm-runner: deps vm-deps
	$(PY) -m pytest -p no:cacheprovider -m vm_runner tests/vm

test-vm-auto: deps
	@if $(PY) -m harness.vm probe-bonding; then \
	  echo "bond tests run on this host (test-host); no VM needed"; \
	else \
	  $(MAKE) --no-print-directory test-vm; \
	fi
