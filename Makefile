# The two commands: `make run` (install, prepare the host, start everything) and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST_SLUG ?= local
BIND ?= 127.0.0.1:8000
# Reverse proxies whose X-Forwarded-For is believed (addresses/networks, comma-separated); empty: none.
TRUSTED_PROXIES ?=
APT_PACKAGES := python3 python3-venv python3-dev gcc lxc lxc-templates debootstrap busybox-static rsync \
	libvirt-daemon libvirt-daemon-driver-lxc libvirt-clients libvirt-dev pkg-config btrfs-progs lvm2 \
	redis-server bridge-utils dnsmasq-base iptables iproute2 procps e2fsprogs \
	debian-archive-keyring gnupg wget xz-utils openssl
# make run installs exactly these, without recommended packages (a printer tool came along with
# them); what the console needs of the recommendations is listed above (debootstrap checks the
# archive's signatures, tarballs may be .tar.xz).
# Only the tests need these (browser, the VM tier's kernel and QEMU, the PostgreSQL run): make test adds them.
TEST_APT_PACKAGES := chromium qemu-system-x86 linux-image-amd64 cpio udev postgresql

.PHONY: bench run test deps system-packages test-packages venv prepare-host db agent web stop lint format unit host-tests vm-zfs-deps vm-tests

run: deps prepare-host db
	@$(MAKE) --no-print-directory agent
	@echo
	@echo "  Console: http://$(BIND)/"
	@$(BIN)/python manage.py ensure_admin | tail -1 | sed 's/^/  /'
	@echo "  (agent log: var/log/agent.log; stop everything started here with 'make stop')"
	@echo
	echo $$$$ > var/web.pid; TRUSTED_PROXIES='$(TRUSTED_PROXIES)' VENV_BIN=$(BIN) \
		exec scripts/web $(word 1,$(subst :, ,$(BIND))) $(word 2,$(subst :, ,$(BIND)))

deps: system-packages venv

system-packages test-packages:
	@if [ "$$(id -u)" != 0 ]; then echo "make run must be run as root" >&2; exit 1; fi
	@missing=$$(for p in $(APT_PACKAGES) $(if $(filter test-packages,$@),$(TEST_APT_PACKAGES)); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			$(if $(filter system-packages,$@),--no-install-recommends) $$missing; \
	fi

venv: $(BIN)/.installed

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

prepare-host:
	scripts/prepare-host

db: venv
	mkdir -p var/log
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py ensure_admin >/dev/null

# The agent of this machine, in the background; its PID in var/agent.pid.
agent: venv
	@mkdir -p var/log
	@if [ -s var/agent.pid ] && kill -0 $$(cat var/agent.pid) 2>/dev/null; then \
		echo "agent already running (pid $$(cat var/agent.pid))"; \
	else \
		nohup $(BIN)/python manage.py agent --host $(HOST_SLUG) >> var/log/agent.log 2>&1 & echo $$! > var/agent.pid; \
		echo "agent for host '$(HOST_SLUG)' started (pid $$(cat var/agent.pid))"; \
	fi

stop:
	-@for f in var/web.pid var/agent.pid; do [ -s $$f ] && kill $$(cat $$f) 2>/dev/null && echo "stopped $$f"; rm -f $$f; done; true

# The suite twice: on SQLite (the embedded default), then on PostgreSQL, a private cluster that
# pytest starts for the run and removes after it (tests/database.py). Both run even if the first
# fails; make test fails if either does. The VM tier runs on SQLite only, except the VM host test
# (vm_host: an agent in the VM shares the database), which runs on PostgreSQL only (README, "Tests").
test: deps test-packages prepare-host vm-zfs-deps
	@lint=0; sqlite=0; postgres=0; \
	$(MAKE) --no-print-directory lint || lint=$$?; \
	$(BIN)/python -m pytest -m "not vm_host" || sqlite=$$?; \
	$(BIN)/python -m pytest --database=postgres -m "not vm or vm_host" || postgres=$$?; \
	echo "make test: lint (ruff, mypy) exit $$lint, SQLite run exit $$sqlite, PostgreSQL run exit $$postgres"; \
	[ $$lint = 0 ] && [ $$sqlite = 0 ] && [ $$postgres = 0 ]

unit: venv
	$(BIN)/python -m pytest -m "not host and not browser and not vm"

# The VM test tier (tests/vm) runs this host's system in Debian's kernel under QEMU; for ZFS that
# kernel needs zfs.ko: Debian contrib's zfs-dkms builds it once (5-12 min on 2 cores).
vm-zfs-deps: test-packages
	scripts/vm-zfs-deps

# Only the VM tier (LVM, ZFS, LXC on both), about 3 minutes.
vm-tests: deps vm-zfs-deps
	$(BIN)/python -m pytest -m vm tests/vm

bench: deps test-packages prepare-host
	$(BIN)/python bench/lifecycle.py --rounds 5
	$(BIN)/python bench/click.py --rounds 10
	$(BIN)/python bench/btrfs_snapshot.py --rounds 3
	$(BIN)/python bench/audit_export.py
	$(BIN)/python bench/pages.py
	$(BIN)/python bench/recovery.py --rounds 5 --orphans 4
	$(BIN)/python bench/agent.py --containers 10,40 --seconds 60
	$(BIN)/python bench/hosts.py --hosts 10,25,50 --containers 200 --seconds 30

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy console containers storage networks bench tests

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
