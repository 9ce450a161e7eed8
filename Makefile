# corten: build, demo, test and install.
#
#   make demo    install what is needed, build, run a busybox container through corten
#   make test    install what is needed, build, fmt + clippy + unit + integration tests,
#                the conformance suite against corten, the tests in a cgroup v2 VM,
#                the stock systemd host VM (test-systemd), test-arm64
#   make conformance   the OCI runtime-spec suite, corten and runc side by side
#   make build   release build: target/release/corten
#   make install PREFIX=/usr/local DESTDIR=   binaries, man pages, completions, examples (no build as root)
#   make deb     target/deb/corten_<version>_<arch>.deb
#   make test-cgroupv2   the integration tests in a qemu VM with a pure cgroup v2 hierarchy
#   make test-systemd    Docker, containerd, podman and corten on a stock Debian 12 host (systemd, cgroup v2) in qemu
#   make cross-arm64     cross-build target/aarch64-unknown-linux-gnu/release/{corten,containerd-shim-corten-v2}
#   make test-arm64-unit the runtime's unit tests for aarch64 under qemu-aarch64-static
#   make test-arm64      arm64: cross build, unit tests under qemu-user, container checks in an arm64 qemu VM
#   make bench   corten vs runc, crun and the runc shim: markdown table + target/bench/results.json
#   make fuzz    the property-based fuzz targets, FUZZ_CASES (20000) cases each
#
# Everything the targets need is installed here, idempotently, from Debian's
# packages. When no `cargo` is on PATH, Debian's cargo-web/rustc-web are used.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

PREFIX ?= /usr/local
DESTDIR ?=

# Debian packages the demo and the tests use.
DEB_PACKAGES := busybox-static runc crun jq docker.io podman containerd curl procps uidmap iproute2 protobuf-compiler
# Toolchain packages, only when cargo is missing.
DEB_TOOLCHAIN := cargo-web rustc-web rust-web-clippy rustfmt gcc libc6-dev

CARGO ?= $(shell command -v cargo 2>/dev/null || echo /usr/bin/cargo)
TEST_THREADS ?= 2

.PHONY: build deps toolchain demo test fmt-check clippy unit integration test-cgroupv2 test-systemd install uninstall deb clean bench bench-deps soak fuzz

## deps: install the Debian packages the demo and tests need (idempotent;
## root only when one is missing). scripts/ensure-packages.sh also keeps
## package scripts from starting the system's docker and containerd
## services (a policy-rc.d guard); the tests start their own daemons.
deps:
	@./scripts/ensure-packages.sh --for "make deps" $(DEB_PACKAGES)

## docker-profile: Docker's default seccomp profile (moby's format), taken
## from Debian's golang-github-docker-docker-dev package without installing
## it; the seccomp tests convert it as dockerd does.
DOCKER_PROFILE := target/docker-seccomp/default.json
$(DOCKER_PROFILE):
	@mkdir -p target/docker-seccomp
	cd target/docker-seccomp && rm -f *.deb && apt-get download -q golang-github-docker-docker-dev >/dev/null \
	  && dpkg-deb --fsys-tarfile golang-github-docker-docker-dev_*.deb \
	  | tar -xO ./usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json > default.json.tmp \
	  && mv default.json.tmp default.json && rm -f *.deb

## toolchain: make sure a cargo exists; fall back to Debian's cargo-web/rustc-web.
toolchain:
	@if ! command -v cargo >/dev/null 2>&1 && ! [ -x /usr/bin/cargo ]; then \
	  echo "no cargo on PATH: installing Debian's $(DEB_TOOLCHAIN)"; \
	  [ "$$(id -u)" = 0 ] || { echo "make toolchain: need root to install a toolchain" >&2; exit 1; }; \
	  apt-get update -qq || true; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_TOOLCHAIN) >/dev/null; \
	fi

## build: corten and the shim as static-pie executables (glibc, crt-static),
## built for the host triple into target/<triple>/release/ and hard-linked into
## target/release/, where everything else looks for them. Static linking
## measured: the shim's resident memory 3.6 -> 2.6 MB (ld.so and libc's
## shared pages are gone), `corten run` 13% faster (no dynamic loading on each
## of its execs). Neither binary uses NSS (no getpwnam/getaddrinfo), so static
## glibc is safe. A plain `cargo build --release` still gives working dynamic
## binaries.
HOST_TARGET := $(shell uname -m)-unknown-linux-gnu
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
STATIC_RUSTFLAGS := -C target-feature=+crt-static

##
## The man pages and shell completions are generated from the same clap
## definitions by corten-docgen (docgen/) into target/dist/{man,completions}.
build: toolchain
	RUSTFLAGS="$(STATIC_RUSTFLAGS)" $(CARGO) build --release --locked --target $(HOST_TARGET) \
	  -p corten -p containerd-shim-corten-v2 -p corten-docgen
	@mkdir -p $(TARGET_DIR)/release
	@for b in corten containerd-shim-corten-v2; do \
	  ln -f $(TARGET_DIR)/$(HOST_TARGET)/release/$$b $(TARGET_DIR)/release/$$b; done
	@$(TARGET_DIR)/$(HOST_TARGET)/release/corten-docgen $(TARGET_DIR)/dist

demo: deps build
	./scripts/demo.sh target/release/corten

## fmt-check: `cargo fmt --check`, strict wherever the rustfmt can parse the
## code. The code uses C-string literals (c"…", Rust 1.77); Debian 12's own
## rustfmt (1.63, what a machine without rustup gets) cannot parse them, so
## there the gate is skipped with a SKIP line saying so. CI and developers
## (rustup toolchains) always run it. The probe formats one such literal.
fmt-check: toolchain
	@fmt=$$(dirname $(CARGO))/rustfmt; [ -x "$$fmt" ] || fmt=rustfmt; \
	if printf 'const A: &std::ffi::CStr = c"x";\n' | "$$fmt" --edition 2021 --emit stdout >/dev/null 2>&1; then \
	  $(CARGO) fmt --all -- --check; \
	else \
	  echo "fmt-check: SKIP: $$($(CARGO) fmt --version 2>&1 | head -n1) cannot parse C-string literals (Rust 1.77 syntax); a rustup toolchain runs this gate"; \
	fi

clippy: toolchain
	$(CARGO) clippy --locked --all-targets -- -D warnings

unit: toolchain
	@rm -f target/unit-skips.log
	CORTEN_TEST_SKIP_LOG=$(CURDIR)/target/unit-skips.log \
	  $(CARGO) test --locked -p corten -p containerd-shim-corten-v2 -p corten-conformance -p corten-testkit -p corten-docgen
	@touch target/unit-skips.log; echo "unit: $$(wc -l <target/unit-skips.log) skipped"; \
	  cat target/unit-skips.log

integration: deps build $(DOCKER_PROFILE)
	@rm -f target/it-skips.log target/cri-results.log
	CORTEN_BIN=$(CURDIR)/target/release/corten CORTEN_SHIM_BIN=$(CURDIR)/target/release/containerd-shim-corten-v2 \
	  CORTEN_IT_SKIP_LOG=$(CURDIR)/target/it-skips.log CORTEN_CRI_RESULTS=$(CURDIR)/target/cri-results.log \
	  $(CARGO) test --locked --no-fail-fast -p corten-integration-tests -- --test-threads=$(TEST_THREADS)
	@touch target/it-skips.log target/cri-results.log; \
	  for h in runc corten-runc-shim corten; do \
	    echo "cri $$h: $$(grep -c " $$h ok$$" target/cri-results.log || true) passed, $$(grep -c " $$h failed$$" target/cri-results.log || true) failed, $$(grep -c " $$h skipped$$" target/cri-results.log || true) skipped"; \
	  done; \
	  echo "integration: $$(wc -l <target/it-skips.log) skipped checks"; cat target/it-skips.log

## conformance: the OCI runtime-spec suite (conformance/) against corten and
## runc side by side: one line per case and runtime, the table
## `case | runc | corten`, then `conformance corten: …` and `conformance runc: …`.
## Failures are reported, not fatal (the suite itself failing is).
## conformance-corten: the suite against corten alone; fails on any failed case.
## Root; runs in /tmp/corten-conformance-<pid>/, removed afterwards.
CONF_TARGET := $(HOST_TARGET)
CONF_DIR := $(TARGET_DIR)
CONF_CHECKER := $(CONF_DIR)/$(CONF_TARGET)/release/corten-conformance-checker
CONF_HARNESS := $(CONF_DIR)/release/corten-conformance
CONF_CORTEN ?= $(CONF_DIR)/release/corten
CONF_RUNC ?= /usr/sbin/runc

.PHONY: conformance conformance-corten conformance-build

conformance-build: build
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release --locked \
	  -p corten-conformance --bin corten-conformance-checker --target $(CONF_TARGET)
	$(CARGO) build --release --locked -p corten-conformance --bin corten-conformance

conformance: deps conformance-build
	@rc=0; $(CONF_HARNESS) --checker $(CONF_CHECKER) --runtime $(CONF_CORTEN) \
	  --reference $(CONF_RUNC) $(if $(CONF_FILTER),--filter $(CONF_FILTER)) || rc=$$?; [ $$rc -le 1 ]

conformance-corten: deps conformance-build
	@$(CONF_HARNESS) --checker $(CONF_CHECKER) --runtime $(CONF_CORTEN) \
	  $(if $(CONF_FILTER),--filter $(CONF_FILTER))

## test-cgroupv2: integration tests in a qemu VM (TCG, no network) booted with
## Debian's kernel and a pure cgroup v2 /sys/fs/cgroup, all controllers enabled.
## CGROUPV2_TESTS picks the test files (default: cgroups lifecycle); see the script.
test-cgroupv2: toolchain
	CARGO=$(CARGO) ./scripts/cgroupv2-vm.sh

## arm64, on this amd64 host (README "arm64"):
## cross-arm64: target/aarch64-unknown-linux-gnu/release/{corten,containerd-shim-corten-v2},
##   built by Debian's rustc-web (rustup has no aarch64 std here) in its own
##   target dir, target/arm64/ (two compilers sharing target/ would keep
##   rebuilding each other's artifacts), then copied to that path.
## test-arm64-unit: `cargo test -p corten` for aarch64 under qemu-aarch64-static;
##   a test the emulator cannot run (exec of a spawned aarch64 binary, seccomp,
##   openat2, bpf) prints SKIP and is counted here, and runs in the VM.
## test-arm64: both, then scripts/arm64-vm.sh: Debian's arm64 kernel in
##   qemu-system-aarch64 (TCG) runs corten's lifecycle, namespace, capability,
##   seccomp and cgroup checks, and the unit tests on a real arm64 kernel.
ARM64_TARGET := aarch64-unknown-linux-gnu
ARM64_DIR := $(CURDIR)/target/arm64
ARM64_OUT := $(CURDIR)/target/$(ARM64_TARGET)/release
ARM64_ENV := RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc CARGO_TARGET_DIR=$(ARM64_DIR) \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="env CORTEN_TEST_EMULATOR=qemu-user qemu-aarch64-static"

.PHONY: arm64-toolchain cross-arm64 test-arm64-unit test-arm64

## test-systemd: a stock Debian 12 host in qemu (systemd as PID 1, cgroup
## v2, Docker/containerd/podman as packaged services, corten's systemd
## cgroup driver): scripts/systemd-vm.sh. Then the same host booted with
## systemd's legacy hybrid v1 layout (SYSTEMD_VM_CGROUP=v1). The image is
## built once with debootstrap (a few minutes) and cached under
## target/systemd-vm/.
test-systemd: toolchain
	CARGO="$(CARGO)" ./scripts/systemd-vm.sh
	CARGO="$(CARGO)" SYSTEMD_VM_CGROUP=v1 ./scripts/systemd-vm.sh

arm64-toolchain:
	./scripts/arm64-toolchain.sh

cross-arm64: toolchain arm64-toolchain
	$(ARM64_ENV) $(CARGO) build --release --locked --target $(ARM64_TARGET) -p corten -p containerd-shim-corten-v2
	@mkdir -p $(ARM64_OUT)
	cp $(ARM64_DIR)/$(ARM64_TARGET)/release/corten $(ARM64_DIR)/$(ARM64_TARGET)/release/containerd-shim-corten-v2 $(ARM64_OUT)/

test-arm64-unit: toolchain arm64-toolchain
	@mkdir -p $(ARM64_DIR) && rm -f $(ARM64_DIR)/unit-skips.log
	$(ARM64_ENV) CORTEN_TEST_SKIP_LOG=$(ARM64_DIR)/unit-skips.log \
	  $(CARGO) test --locked --target $(ARM64_TARGET) -p corten
	@touch $(ARM64_DIR)/unit-skips.log; \
	  echo "arm64 unit tests under qemu-user: $$(wc -l <$(ARM64_DIR)/unit-skips.log) skipped (they run in the arm64 VM)"; \
	  cat $(ARM64_DIR)/unit-skips.log

test-arm64: cross-arm64 test-arm64-unit
	$(ARM64_ENV) CARGO=$(CARGO) ./scripts/arm64-vm.sh

## fuzz: the property-based fuzz targets (proptest), the unit tests whose
## names contain `fuzz`: config.json and `exec --process` decoding and
## validation (runtime/src/spec/fuzz.rs), the seccomp compiler against an
## independent model on random seccomp_data (runtime/src/seccomp/tests/fuzz.rs),
## linux.resources into cgroup writes (runtime/src/cgroups/fuzz.rs), the
## shim's decoding of requests, options, files and stats (shim/src/fuzz.rs).
## FUZZ_CASES cases each (a plain `cargo test` runs 256). A failure is
## shrunk and its seed saved under runtime/ or shim/proptest-regressions/,
## which every later run (`make unit` too) replays first: commit them.
FUZZ_CASES ?= 20000

fuzz: toolchain
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test --release --locked \
	  -p corten -p containerd-shim-corten-v2 fuzz

## test: everything CI runs.
test: deps build fmt-check clippy unit integration conformance-corten test-cgroupv2 test-systemd test-arm64
	@echo "make test: all checks passed"

## bench: corten side by side with runc, crun and containerd-shim-runc-v2
## (bench/bench.py, Python 3 standard library only): prints a markdown table,
## writes target/bench/results.json. Root; a few minutes. Installs its Debian
## packages when missing (containerd's service is not started). The
## systemd-driver row is measured in the stock systemd host VM
## (SYSTEMD_VM_MODE=bench scripts/systemd-vm.sh; BENCH_ARGS=--no-systemd-vm
## leaves it out).
BENCH_PACKAGES := busybox-static runc crun containerd time python3 util-linux
BENCH_ARGS ?=

bench: build bench-deps
	/usr/bin/python3 bench/bench.py --repo $(CURDIR) --out $(CURDIR)/target/bench $(BENCH_ARGS)

bench-deps:
	@[ "$$(id -u)" = 0 ] || { echo "make bench/soak: run as root" >&2; exit 1; }
	@./scripts/ensure-packages.sh --for "make bench" $(BENCH_PACKAGES)

## soak: what 1000 `run`s and 300 `exec`s leave behind (mounts, cgroups, state
## entries, processes, open files, memfds), and what 100 `create`s killed at
## random points leave after `delete --force`, corten and runc side by side
## (bench/soak.py; root; about two minutes). Exits 1 if corten leaks.
SOAK_ARGS ?=
soak: build bench-deps
	/usr/bin/python3 bench/soak.py --repo $(CURDIR) --out $(CURDIR)/target/bench $(SOAK_ARGS)

## install: what `make build` built, with the man pages, completions and
## examples (scripts/install.sh). It does not compile when the build is
## there; under sudo with nothing built it stops and asks for `make build`
## as the user (a root build would leave root-owned files in target/ and
## could install a toolchain). Plain root (no sudo) builds first.
INSTALL_NEEDS := $(TARGET_DIR)/release/corten $(TARGET_DIR)/release/containerd-shim-corten-v2 \
  $(TARGET_DIR)/dist/man/corten.8 $(TARGET_DIR)/dist/completions/corten.bash
install:
	@missing=; for f in $(INSTALL_NEEDS); do [ -e "$$f" ] || missing="$$missing $$f"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && [ -n "$${SUDO_USER:-}" ]; then \
	    echo "make install: not built yet ($$missing): run 'make build' as $$SUDO_USER first, then 'sudo make install'" >&2; exit 1; fi; \
	  $(MAKE) --no-print-directory build; fi
	@newer=$$(find runtime shim docgen Cargo.lock -newer $(TARGET_DIR)/release/corten -type f 2>/dev/null | head -n 1); \
	  [ -z "$$newer" ] || echo "make install: note: $$newer is newer than the build; run 'make build' (as yourself) to install the current source" >&2
	./scripts/install.sh "$(DESTDIR)" "$(PREFIX)"

uninstall:
	./scripts/install.sh --uninstall "$(DESTDIR)" "$(PREFIX)"

## deb: target/deb/corten_<version>_<arch>.deb of what `make build` built
## (scripts/make-deb.sh; no root needed). Installed and removed with apt in
## the stock Debian 12 VM by `make test-systemd`.
deb: build
	./scripts/make-deb.sh

clean:
	$(CARGO) clean
