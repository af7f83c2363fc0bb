#!/usr/bin/env bash
# Checks what "make package" built in DIST (default dist) for the architectures ARCH... (default
# amd64 arm64): every .deb (and, where rpm is
# installed, every .rpm) holds the binary, the man pages and the completions at their places,
# nothing under /etc, and no maintainer scripts (the package never touches sshd_config); the
# SHA256SUMS of "make dist" match; the package's binary for this machine runs.
set -euo pipefail
dist=${1:-dist}
shift || true
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(amd64 arm64)
fail() { echo "package-test: $*" >&2; exit 1; }

want=(
  usr/bin/opkssh
  usr/share/man/man1/opkssh.1
  usr/share/man/man1/opkssh-login.1
  usr/share/man/man1/opkssh-server-install.1
  usr/share/man/man1/opkssh-provider-add.1
  usr/share/bash-completion/completions/opkssh
  usr/share/zsh/vendor-completions/_opkssh
  usr/share/fish/vendor_completions.d/opkssh.fish
)

(cd "$dist" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not match $dist"
for a in "${archs[@]}"; do
  grep -q " opkssh-linux-$a\$" "$dist/SHA256SUMS" || fail "SHA256SUMS does not list opkssh-linux-$a"
done
grep -q ' man/man1/opkssh.1$' "$dist/SHA256SUMS" || fail "SHA256SUMS does not list the man pages"

shopt -s nullglob
debs=("$dist"/*.deb)
[ ${#debs[@]} -eq ${#archs[@]} ] || fail "want ${#archs[@]} .deb files (${archs[*]}) in $dist, found ${#debs[@]}"
for deb in "${debs[@]}"; do
  list=$(dpkg-deb --contents "$deb")
  for f in "${want[@]}"; do
    grep -q " \./$f\$" <<<"$list" || fail "$deb lacks /$f"
  done
  grep -q '^-rwxr-xr-x root/root .* \./usr/bin/opkssh$' <<<"$list" || fail "$deb: /usr/bin/opkssh is not root:root 0755"
  ! grep -q ' \./etc/' <<<"$list" || fail "$deb installs files under /etc"
  scripts=$(dpkg-deb --info "$deb" | grep -E '^ +[0-9]+ bytes, +[0-9]+ lines? +\*? *(pre|post)(inst|rm)' || true)
  [ -z "$scripts" ] || fail "$deb has maintainer scripts: $scripts"
  echo "package-test: $deb: $(wc -l <<<"$list") entries, binary, man pages, completions; no /etc, no scripts"
done

arch=$(dpkg --print-architecture 2>/dev/null || true)
if compgen -G "$dist/opkssh_*_$arch.deb" >/dev/null; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  dpkg-deb -x "$dist"/opkssh_*_"$arch".deb "$tmp"
  "$tmp/usr/bin/opkssh" version | grep -q '^opkssh ' || fail "the packaged binary does not run"
  echo "package-test: the $arch package's opkssh runs: $("$tmp/usr/bin/opkssh" version)"
fi

rpms=("$dist"/*.rpm)
[ ${#rpms[@]} -eq ${#archs[@]} ] || fail "want ${#archs[@]} .rpm files in $dist, found ${#rpms[@]}"
if ! command -v rpm >/dev/null; then
  echo "package-test: rpm is not installed; the .rpm files were built but their contents are not listed"
  exit 0
fi
for r in "${rpms[@]}"; do
  list=$(rpm -qlp "$r" 2>/dev/null)
  for f in "${want[@]}"; do
    grep -qx "/$f" <<<"$list" || fail "$r lacks /$f"
  done
  ! grep -q '^/etc/' <<<"$list" || fail "$r installs files under /etc"
  [ -z "$(rpm -qp --scripts "$r" 2>/dev/null)" ] || fail "$r has scriptlets"
  echo "package-test: $r: $(wc -l <<<"$list") files, binary, man pages, completions; no /etc, no scriptlets"
done
