# opkssh — see README.md. `make demo` and `make test` are the two commands a newcomer needs.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/opkssh-team/opkssh/commands.Version=$(VERSION)

.PHONY: all build demo test vet cross fuzz bench clean dist package package-test

all: build

# bin/opkssh is the product; bin/testop is the local demo OP; bin/browser/xdg-open is a scripted
# browser (put bin/browser first in PATH on a machine without a browser).
# opkssh is built static (CGO_ENABLED=0): sshd starts verify on every login, and a dynamically
# linked binary pays for the loader and libc start-up each time (docs/benchmarks.md has the
# start-up figures of the static build; its /bin/true row is what the loader alone costs).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/opkssh ./cmd/opkssh
	$(GO) build -o bin/testop ./examples/testop
	$(GO) build -o bin/browser/xdg-open ./internal/testop/fakebrowser

# Local demo OP → login → inspect → verify in a temporary directory (never ~/.ssh). As root with
# openssh-server installed it also logs in over ssh through a throwaway sshd on 127.0.0.1, with a
# temporary account: that part runs in internal/sandbox's copy-on-write view of /etc, /var, /home
# and /run, so nothing reaches the machine (which is checked unchanged afterwards).
demo:
	$(GO) run ./examples/demo

# Everything CI runs: vet, formatting, unit + CLI script + end-to-end tests, short fuzz runs.
test: vet cross
	$(GO) test -count=1 ./...
	$(MAKE) fuzz FUZZTIME=5s

# Workstations run opkssh login on macOS, the BSDs and Windows too: keep them building. With
# -trimpath, as "make dist" builds, so that dist reuses these compilations.
cross:
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -o /dev/null ./cmd/opkssh
	GOOS=freebsd GOARCH=amd64 CGO_ENABLED=0 $(GO) build -trimpath -o /dev/null ./cmd/opkssh
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build -trimpath -o /dev/null ./cmd/opkssh

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# go mod tidy -diff changes nothing: it prints what tidy would change and fails if anything would.
vet:
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: the files above need formatting"; exit 1; }

# Every fuzz target in the repository, each for $(FUZZTIME): go test -fuzz runs one target at a
# time. Add a line here for each new Fuzz function. -timeout 0 lets FUZZTIME exceed go test's
# default 10 minutes.
# Go 1.26's fuzz coordinator can fail a run at the end of -fuzztime with "context deadline exceeded"
# and no failing input (a race, golang/go#75804, fixed in Go 1.27): the target was fuzzed for the
# whole time and found nothing, so that run counts as passed. Only that exact ending is excused: the
# run's last five lines are the target's one "--- FAIL", the coordinator's bare "context deadline
# exceeded", and go test's FAIL trailer, and no failing input was written. A failing seed, a
# fixture error (even one that mentions a deadline) or a written failing input fails.
# internal/maketest runs this with a fake go.
FUZZTIME ?= 30s
FUZZ     = @fuzz_one() { \
	echo "go test -fuzz '$$1' -fuzztime $(FUZZTIME) $$2"; \
	log=$$(mktemp); \
	{ $(GO) test -run '^$$' -timeout 0 -fuzztime $(FUZZTIME) -fuzz "$$1" "$$2"; echo $$? > $$log.rc; } 2>&1 | tee $$log; \
	rc=$$(cat $$log.rc); \
	ending=$$(tail -n 5 $$log | sed -e 's/^--- FAIL: Fuzz[A-Za-z0-9_]* ([0-9.]*s)$$/--- FAIL: TARGET/' -e 's/^FAIL[[:space:]].*$$/FAIL PKG/'); \
	fails=$$(grep -c '^--- FAIL' $$log); written=$$(grep -c 'Failing input written' $$log); \
	rm -f $$log $$log.rc; \
	[ "$$rc" = 0 ] && return 0; \
	race=$$(printf '%s\n' '--- FAIL: TARGET' '    context deadline exceeded' 'FAIL' 'exit status 1' 'FAIL PKG'); \
	if [ "$$fails" = 1 ] && [ "$$written" = 0 ] && [ "$$ending" = "$$race" ]; then \
		echo "fuzz: $$1 in $$2 ran its $(FUZZTIME) and wrote no failing input; Go's deadline race (golang/go\#75804) marked it failed: counted as passed"; \
		return 0; \
	fi; \
	return $$rc; }; fuzz_one
fuzz:
	$(FUZZ) '^FuzzParse$$' ./internal/sshcert
	$(FUZZ) '^FuzzDescribeToken$$' ./internal/sshcert
	$(FUZZ) '^FuzzKeyComment$$' ./internal/sshcert
	$(FUZZ) '^FuzzParse$$' ./policy
	$(FUZZ) '^FuzzParseIdentityArg$$' ./policy
	$(FUZZ) '^FuzzAdd$$' ./policy
	$(FUZZ) '^FuzzRemove$$' ./policy
	$(FUZZ) '^FuzzKeepBlankLines$$' ./internal/yamlfmt
	$(FUZZ) '^FuzzParseUserFile$$' ./policy
	$(FUZZ) '^FuzzVerify$$' ./verifier
	$(FUZZ) '^FuzzPKTokenExtension$$' ./verifier
	$(FUZZ) '^FuzzParseJWKS$$' ./verifier
	$(FUZZ) '^FuzzParseArmored$$' ./internal/sshsig
	$(FUZZ) '^FuzzVerify$$' ./internal/signing
	$(FUZZ) '^FuzzCIPKToken$$' ./verifier
	$(FUZZ) '^FuzzParse$$' ./internal/gqsig
	$(FUZZ) '^FuzzCITokenResponse$$' ./provider

clean:
	rm -rf bin $(DIST)

# Release files in $(DIST): static binaries (opkssh-OS-ARCH, .exe on Windows), man pages
# (man/man1/*.1) and completion scripts (completions/) generated from the commands by
# internal/cmd/gendocs (a program of its own: none of it is linked into opkssh), and SHA256SUMS
# over all of them.
DIST      ?= dist
PLATFORMS ?= linux/amd64 linux/arm64 darwin/arm64 darwin/amd64 windows/amd64
dist:
	rm -rf $(DIST) && mkdir -p $(DIST)
	@set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os != windows ] || ext=.exe; \
		echo "build $(DIST)/opkssh-$$os-$$arch$$ext"; \
		GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/opkssh-$$os-$$arch$$ext ./cmd/opkssh; \
	done
	$(GO) run -ldflags '-X github.com/opkssh-team/opkssh/commands.Version=$(VERSION)' ./internal/cmd/gendocs -out $(DIST)
	cd $(DIST) && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS

# .deb and .rpm for linux $(PKGARCHS) in $(DIST), built by nfpm (run with go run at a pinned
# version, so nothing is installed) from packaging/nfpm.yaml: the binary in /usr/bin, the man
# pages and the completions; no sshd_config change, no user, no scripts. CI builds only amd64
# (make package PLATFORMS=linux/amd64 PKGARCHS=amd64): each cross build costs minutes there.
NFPM       ?= github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
PKGARCHS   ?= amd64 arm64
# v1.2.3 → 1.2.3; v1.2.3-4-gabc1234 (4 commits later) → 1.2.3+4.gabc1234; an untagged commit
# abc1234 → 0.0.0~gitabc1234 (sorts before any release); -dirty → .dirty.
PKGVERSION ?= $(shell echo '$(VERSION)' | sed -E -e 's/^v//' -e 's/-([0-9]+)-g/+\1.g/' -e 's/-dirty$$/.dirty/' -e '/^[0-9]+\./!s/^/0.0.0~git/' -e 's/-/~/g')
package: dist
	@set -e; for arch in $(PKGARCHS); do \
		sed -e "s|@ARCH@|$$arch|g" -e 's|@PKGVERSION@|$(PKGVERSION)|g' -e 's|@DIST@|$(abspath $(DIST))|g' packaging/nfpm.yaml > $(DIST)/nfpm-$$arch.yaml; \
		for fmt in deb rpm; do $(GO) run $(NFPM) package --config $(DIST)/nfpm-$$arch.yaml --packager $$fmt --target $(DIST)/; done; \
		rm $(DIST)/nfpm-$$arch.yaml; \
	done
	$(MAKE) package-test

# What CI checks of the packages: their file lists (dpkg-deb; rpm where installed).
package-test:
	bash packaging/test.sh $(DIST) $(PKGARCHS)

# Whole-process verify latency (cold, warm, OP down), policy scaling, 50 parallel ssh logins, login
# latency and peak RSS; writes docs/benchmarks.md. Run as root with openssh-server for the sshd part.
# BASELINE=REV also runs --version and warm verify of REV's opkssh alternately with this tree's.
bench:
	$(GO) run ./internal/bench -out docs/benchmarks.md $(if $(BASELINE),-baseline $(BASELINE))
