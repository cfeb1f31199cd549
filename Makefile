# quire: build, install and uninstall.
#
#   make                               # = make build: cargo build --release --locked
#   sudo make install                  # into /usr/local
#   make install PREFIX=/usr DESTDIR=pkg   # staged, for packaging
#   sudo make uninstall                # same PREFIX/DESTDIR as install
#   make man                           # regenerate man/*.1 from the clap definitions
#   make test                          # ./scripts/test.sh
#   make check-unit                    # systemd-analyze verify dist/quire.service
#
# `install` does not build (so `sudo make install` does not run cargo as root),
# except when the binary is missing. It runs the built binary to generate the
# shell completions, so the binary must run on this machine.

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MAN1DIR ?= $(DATADIR)/man/man1
DOCDIR ?= $(DATADIR)/doc/quire
UNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR ?= $(DATADIR)/zsh/site-functions
FISHCOMPDIR ?= $(DATADIR)/fish/vendor_completions.d

CARGO ?= cargo
INSTALL ?= install
# Where generated files (completions, the rewritten unit) are put before install.
BUILDDIR ?= target
BIN ?= $(BUILDDIR)/release/quire

# dist/quire.service names /usr/local/bin/quire (what `quire systemd-unit` prints);
# the installed copy names $(BINDIR)/quire.
UNIT_SRC := dist/quire.service
UNIT_EXEC_DEFAULT := /usr/local/bin/quire
MANPAGES := $(wildcard man/*.1)

.PHONY: all build install uninstall man test completions unit check-unit FORCE
.DELETE_ON_ERROR:

all: build

build:
	$(CARGO) build --release --locked

# Only when the binary is missing: `install` after `build` does not rebuild.
$(BIN):
	$(CARGO) build --release --locked

completions: $(BIN)
	mkdir -p $(BUILDDIR)/completions
	$(BIN) completions bash > $(BUILDDIR)/completions/quire.bash
	$(BIN) completions zsh > $(BUILDDIR)/completions/_quire
	$(BIN) completions fish > $(BUILDDIR)/completions/quire.fish

unit: $(BUILDDIR)/quire.service

$(BUILDDIR)/quire.service: $(UNIT_SRC) FORCE
	mkdir -p $(BUILDDIR)
	sed -e 's|^ExecStart=$(UNIT_EXEC_DEFAULT) |ExecStart=$(BINDIR)/quire |' $(UNIT_SRC) > $@
	grep -q '^ExecStart=$(BINDIR)/quire serve' $@

FORCE:

install: $(BIN) completions unit
	$(INSTALL) -Dm755 $(BIN) $(DESTDIR)$(BINDIR)/quire
ifeq ($(MANPAGES),)
	@echo "warning: no man pages in man/ (run 'make man'); none installed" >&2
else
	$(INSTALL) -d $(DESTDIR)$(MAN1DIR)
	$(INSTALL) -m644 $(MANPAGES) $(DESTDIR)$(MAN1DIR)/
endif
	$(INSTALL) -Dm644 $(BUILDDIR)/quire.service $(DESTDIR)$(UNITDIR)/quire.service
	$(INSTALL) -Dm644 config.example.toml $(DESTDIR)$(DOCDIR)/config.example.toml
	$(INSTALL) -Dm644 $(BUILDDIR)/completions/quire.bash $(DESTDIR)$(BASHCOMPDIR)/quire
	$(INSTALL) -Dm644 $(BUILDDIR)/completions/_quire $(DESTDIR)$(ZSHCOMPDIR)/_quire
	$(INSTALL) -Dm644 $(BUILDDIR)/completions/quire.fish $(DESTDIR)$(FISHCOMPDIR)/quire.fish
	@echo
	@echo "Installed. For the service: create the user 'quire' (see the comments in"
	@echo "$(UNITDIR)/quire.service), then: systemctl daemon-reload && systemctl enable --now quire"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/quire
	rm -f $(DESTDIR)$(MAN1DIR)/quire.1 $(DESTDIR)$(MAN1DIR)/quire-*.1
	rm -f $(DESTDIR)$(UNITDIR)/quire.service
	rm -f $(DESTDIR)$(DOCDIR)/config.example.toml
	rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	rm -f $(DESTDIR)$(BASHCOMPDIR)/quire $(DESTDIR)$(ZSHCOMPDIR)/_quire $(DESTDIR)$(FISHCOMPDIR)/quire.fish

man:
	$(CARGO) run --quiet -- man --dir man

# Checks dist/quire.service with systemd-analyze (no running systemd needed).
# ExecStart points at /bin/true so that a missing binary is not reported, and
# --man=no skips the man:quire(1) lookups. verify exits 0 even on unknown keys
# or bad values (it only prints them), so any output fails the check.
check-unit:
	@d=$$(mktemp -d) && \
	sed -e 's|^ExecStart=$(UNIT_EXEC_DEFAULT) |ExecStart=/bin/true |' $(UNIT_SRC) > $$d/quire.service && \
	out=$$(systemd-analyze verify --man=no $$d/quire.service 2>&1); rm -rf $$d; \
	if [ -n "$$out" ]; then echo "$$out" >&2; exit 1; fi; echo "$(UNIT_SRC): systemd-analyze verify: ok"

test:
	./scripts/test.sh
