#!/usr/bin/env bash
# make-local-repo.sh: a small, signed, multi-architecture Alpine-style package repository made
# from Debian's busybox-static and musl, with nothing but alpenglow's own commands
# (keygen, pkg create, apk index, apk verify). No access to Alpine's mirrors is needed.
#
# Usage: bash examples/make-local-repo.sh [OUT_DIR]        (default: examples/local)
#
# What it makes in OUT_DIR:
#   repo/<arch>/*.apk, repo/<arch>/APKINDEX.tar.gz   one signed repository per architecture
#   keys/alpenglow-local.rsa.pub                     the public key (trust it to install)
#   private/alpenglow-local.rsa                      the private key that signed everything
#   alpine-base.yaml                                 an image configuration using the above
#   downloads/<debian-arch>/*.deb                    Debian's packages, kept for the next run
#
# Then build an image from it:  alpenglow build OUT_DIR/alpine-base.yaml --arch all
# (with the default OUT_DIR, examples/alpine-base.yaml points at the same repository).
#
# Environment:
#   ARCHES         only these Alpine architectures, e.g. "x86_64 aarch64" (default: all)
#   DEBIAN_MIRROR  the Debian archive (default: the one this machine's apt uses, else
#                  http://deb.debian.org/debian)
#   ALPENGLOW      the alpenglow command (default: the checkout's .venv/bin/alpenglow, else
#                  the one on PATH)
#
# Re-running reuses the downloads, the key and every architecture whose inputs did not change.
# An architecture whose download fails is skipped with a message; the others are still built.
# Delete OUT_DIR/downloads to fetch Debian's newest packages again.
set -euo pipefail
umask 022

here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:-$here/local}" && cd "${1:-$here/local}" && pwd)
if [ -n "${ALPENGLOW:-}" ]; then
    ag=$ALPENGLOW
elif [ -x "$here/../.venv/bin/alpenglow" ]; then
    ag="$(cd "$here/.." && pwd)/.venv/bin/alpenglow"
else
    ag=alpenglow
fi
# Reproducible packages: every timestamp is this one (2025-01-01), unless you set another.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1735689600}"

say() { printf '%s\n' "$*"; }
skip() { say "  SKIPPED $1: $2"; skipped+=("$1"); }

# ---------------------------------------------------------------------------------------------
# Architectures. Debian 12 (bookworm) has busybox-static and musl for the first seven; riscv64
# comes from Debian 13 (trixie) and loong64 from unstable (sid). Alpine's armhf is ARMv6
# hard-float: Debian's armel (ARMv5 soft-float) busybox runs there, and its musl loader is
# installed under Alpine's name (fine for busybox and sh; not for linking hard-float programs).
#
# alpine      debian   suite     qemu-user    musl loader name on Alpine (in /lib)
ARCH_TABLE="
x86_64      amd64    bookworm  x86_64       ld-musl-x86_64.so.1
x86         i386     bookworm  i386         ld-musl-i386.so.1
aarch64     arm64    bookworm  aarch64      ld-musl-aarch64.so.1
armv7       armhf    bookworm  arm          ld-musl-armhf.so.1
armhf       armel    bookworm  arm          ld-musl-armhf.so.1
ppc64le     ppc64el  bookworm  ppc64le      ld-musl-powerpc64le.so.1
s390x       s390x    bookworm  s390x        ld-musl-s390x.so.1
riscv64     riscv64  trixie    riscv64      ld-musl-riscv64.so.1
loongarch64 loong64  sid       loongarch64  ld-musl-loongarch64.so.1
"

native_debian=$(dpkg --print-architecture 2>/dev/null || echo amd64)
declare -A DEBIAN SUITE QEMU LOADER
arches=()
while read -r alpine debian suite qemu loader; do
    [ -n "$alpine" ] || continue
    if [ -n "${ARCHES:-}" ] && [[ " $ARCHES " != *" $alpine "* ]]; then continue; fi
    DEBIAN[$alpine]=$debian SUITE[$alpine]=$suite QEMU[$alpine]=$qemu LOADER[$alpine]=$loader
    # the machine's own architecture first: its busybox applet list is the fallback for
    # architectures whose busybox cannot run here
    if [ "$debian" = "$native_debian" ]; then arches=("$alpine" ${arches[@]+"${arches[@]}"}); else arches+=("$alpine"); fi
done <<<"$ARCH_TABLE"
if [ ${#arches[@]} = 0 ]; then
    say "ERROR: ARCHES=$ARCHES names no known architecture" >&2
    exit 2
fi
skipped=()

# ---------------------------------------------------------------------------------------------
say "== Debian packages (busybox-static, musl, ca-certificates) into $out/downloads"

debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then
        say "${DEBIAN_MIRROR%/}"
        return
    fi
    # the first http(s) URL ending in /debian in the system's apt sources (one-line or deb822)
    local found
    found=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -v '^[[:space:]]*#' | grep -oE 'https?://[^][ "]+/debian/?([[:space:]]|$)' |
        head -n 1 | tr -d '[:space:]' || true)
    found=${found%/}
    say "${found:-http://deb.debian.org/debian}"
}

have_debs() { # ARCH: are both .debs of ARCH downloaded?
    local d="$out/downloads/${DEBIAN[$1]}"
    compgen -G "$d/busybox-static_*.deb" >/dev/null && compgen -G "$d/musl_*.deb" >/dev/null
}

newest() { # GLOB: the last matching file in version order, or nothing
    compgen -G "$1" | sort -V | tail -n 1
}

missing=()
for arch in "${arches[@]}"; do have_debs "$arch" || missing+=("$arch"); done
ca_deb=$(newest "$out/downloads/all/ca-certificates_*.deb" || true)

if [ ${#missing[@]} -gt 0 ] || [ -z "$ca_deb" ]; then
    command -v apt-get >/dev/null || { say "ERROR: apt-get is needed to download Debian's packages" >&2; exit 1; }
    mirror=$(debian_mirror)
    # A private apt configuration: its own sources, lists, status and cache under OUT/apt, so
    # the system's apt state is untouched and no `dpkg --add-architecture` is needed.
    apt="$out/apt"
    rm -rf "$apt"
    mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/sources.list.d" "$apt/preferences.d"
    : >"$apt/status"
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    signed=""
    [ -f "$keyring" ] && signed=" signed-by=$keyring"
    want=("${missing[@]}")
    [ ${#want[@]} -gt 0 ] || want=("${arches[0]}") # ca-certificates only
    : >"$apt/sources.list"
    for suite in bookworm trixie sid; do
        names=()
        for arch in "${want[@]}"; do [ "${SUITE[$arch]}" = "$suite" ] && names+=("${DEBIAN[$arch]}"); done
        [ "$suite" = bookworm ] && names+=("$native_debian") # ca-certificates (Architecture: all)
        [ ${#names[@]} -gt 0 ] || continue
        list=$(printf '%s\n' "${names[@]}" | sort -u | paste -sd, -)
        extra=""
        [ "$suite" = sid ] && extra=" check-valid-until=no"
        say "deb [arch=$list$signed$extra] $mirror $suite main" >>"$apt/sources.list"
    done
    arch_list=$(for arch in "${want[@]}"; do printf '"%s"; ' "${DEBIAN[$arch]}"; done)
    cat >"$apt/apt.conf" <<EOF
Dir::Etc::SourceList "$apt/sources.list";
Dir::Etc::SourceParts "$apt/sources.list.d";
Dir::Etc::Preferences "$apt/preferences";
Dir::Etc::PreferencesParts "$apt/preferences.d";
Dir::State "$apt";
Dir::State::Lists "$apt/lists";
Dir::State::status "$apt/status";
Dir::Cache "$apt";
Dir::Cache::archives "$apt/archives";
Dir::Cache::pkgcache "$apt/pkgcache.bin";
Dir::Cache::srcpkgcache "$apt/srcpkgcache.bin";
APT::Architecture "$native_debian";
APT::Architectures { "$native_debian"; $arch_list };
Acquire::Languages "none";
Acquire::Retries "2";
APT::Sandbox::User "$(id -un)";
EOF
    export APT_CONFIG="$apt/apt.conf" LC_ALL=C DEBIAN_FRONTEND=noninteractive
    say "apt-get update from $mirror ($(grep -c . "$apt/sources.list") suites)"
    # A suite that cannot be reached is not fatal: its architectures are skipped below.
    apt-get -q update >"$apt/update.log" 2>&1 || say "  (some indexes failed; see $apt/update.log)"

    # One `apt-get download` for everything: apt reads its big package lists once. If that
    # fails (some architecture has no candidate), once more per architecture, to keep the rest.
    partial="$out/downloads/.partial"
    rm -rf "$partial"
    mkdir -p "$partial"
    specs=()
    # (ca-certificates is Architecture: all, so apt takes the newest of the suites listed)
    [ -n "$ca_deb" ] || specs+=(ca-certificates)
    for arch in ${missing[@]+"${missing[@]}"}; do specs+=("busybox-static:${DEBIAN[$arch]}" "musl:${DEBIAN[$arch]}"); done
    say "apt-get download (${#specs[@]} packages)"
    if ! (cd "$partial" && apt-get -q download "${specs[@]}") >"$apt/download.log" 2>&1; then
        say "  (not everything is there: trying one architecture at a time)"
        for arch in ${missing[@]+"${missing[@]}"}; do
            debian=${DEBIAN[$arch]}
            (cd "$partial" && apt-get -q download "busybox-static:$debian" "musl:$debian") >"$apt/download-$debian.log" 2>&1 || true
        done
        [ -n "$ca_deb" ] || (cd "$partial" && apt-get -q download ca-certificates) >"$apt/download-all.log" 2>&1 || true
    fi
    # File names end in _<debian arch>.deb: sort them into downloads/<debian arch>/.
    for arch in ${missing[@]+"${missing[@]}"}; do
        debian=${DEBIAN[$arch]}
        got=()
        for package in busybox-static musl; do
            found=$(newest "$partial/${package}_*_$debian.deb" || true)
            [ -z "$found" ] || got+=("$found")
        done
        if [ ${#got[@]} = 2 ]; then
            mkdir -p "$out/downloads/$debian"
            mv "${got[@]}" "$out/downloads/$debian/"
            say "  $arch: ${got[*]##*/}"
        else
            log="$apt/download-$debian.log"
            [ -f "$log" ] || log="$apt/download.log"
            skip "$arch" "Debian ${SUITE[$arch]} gave no busybox-static/musl for $debian ($(grep -E '^(E|W|Err):' "$log" | head -n 1 || echo "see $log"))"
        fi
    done
    if [ -z "$ca_deb" ]; then
        found=$(newest "$partial/ca-certificates_*_all.deb" || true)
        if [ -n "$found" ]; then
            mkdir -p "$out/downloads/all"
            mv "$found" "$out/downloads/all/"
        fi
        ca_deb=$(newest "$out/downloads/all/ca-certificates_*.deb" || true)
    fi
    rm -rf "$partial"
    unset APT_CONFIG
    rm -rf "$apt/lists" "$apt"/*.bin # big, and only needed for this download
else
    say "all downloaded already (delete $out/downloads to fetch newer ones)"
fi

# ---------------------------------------------------------------------------------------------
say "== signing key"
# apk finds a signature's key by file name: the private key NAME.rsa signs as NAME.rsa.pub,
# so the pair gets a fixed name that the image configuration can point at.
key="$out/private/alpenglow-local.rsa"
pub="$out/keys/alpenglow-local.rsa.pub"
if [ -f "$key" ] && [ -f "$pub" ]; then
    say "reusing $key"
else
    rm -rf "$out/private" "$out/keys" "$out/.keygen"
    mkdir -p "$out/.keygen" "$out/keys"
    "$ag" keygen --bits 2048 "$out/.keygen/alpenglow-local" >/dev/null
    mkdir -m 700 "$out/private"
    mv "$out"/.keygen/alpenglow-local-*.rsa "$key"
    mv "$out"/.keygen/alpenglow-local-*.rsa.pub "$pub"
    rmdir "$out/.keygen"
    say "new key pair: $key, $pub"
fi

# ---------------------------------------------------------------------------------------------
# Package versions: Debian's upstream version and revision number, apk style
# (1:1.35.0-4+deb12u1+b1 -> 1.35.0-r4, 20230311 -> 20230311-r0).
apk_version() {
    local v=${1#*:} upstream revision
    if [[ $v == *-* ]]; then upstream=${v%-*} revision=${v##*-}; else upstream=$v revision=0; fi
    upstream=$(grep -oE '^[0-9]+(\.[0-9]+)*' <<<"$upstream")
    revision=$(grep -oE '^[0-9]+' <<<"$revision" || echo 0)
    say "$upstream-r$revision"
}
BASELAYOUT_VERSION=3.7.0-r0
RELEASE_VERSION=3.22.0-r0
KEYS_VERSION=2.5-r0
MAINTAINER="alpenglow local repository <nobody@localhost>"

create() { # TREE NAME VERSION ARCH OUTPUT_DIR [pkg create options...]: one signed package
    local tree=$1 name=$2 version=$3 arch=$4 dest=$5
    shift 5
    "$ag" pkg create "$tree" --name "$name" --version "$version" --arch "$arch" \
        --maintainer "$MAINTAINER" --uid 0 --gid 0 --sign-key "$key" \
        -o "$dest/$name-$version.apk" "$@" >/dev/null
}

fresh_tree() { # NAME: an empty scratch directory for a package's files
    rm -rf "${work:?}/$1"
    mkdir -p "$work/$1"
    say "$work/$1"
}

work="$out/.work"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

# ---------------------------------------------------------------------------------------------
say "== noarch packages: alpine-keys, ca-certificates-bundle"
noarch="$work/noarch"
mkdir -p "$noarch"

t=$(fresh_tree alpine-keys)
mkdir -p "$t/etc/apk/keys" "$t/usr/share/apk/keys"
cp "$pub" "$t/etc/apk/keys/"
cp "$pub" "$t/usr/share/apk/keys/"
create "$t" alpine-keys "$KEYS_VERSION" noarch "$noarch" --license MIT \
    --description "Public keys for the local alpenglow repository" --url https://alpinelinux.org

t=$(fresh_tree ca-certificates-bundle)
mkdir -p "$t/etc/ssl/certs"
# Debian's ca-certificates ships Mozilla's CA certificates one file each; the bundle is all of
# them in one file, as update-ca-certificates writes it.
if [ -n "$ca_deb" ] && dpkg-deb -x "$ca_deb" "$work/ca-deb"; then
    find "$work/ca-deb/usr/share/ca-certificates/mozilla" -name '*.crt' | sort |
        xargs cat >"$t/etc/ssl/certs/ca-certificates.crt"
    ca_version=$(apk_version "$(dpkg-deb -f "$ca_deb" Version)")
    say "  $(grep -c 'BEGIN CERTIFICATE' "$t/etc/ssl/certs/ca-certificates.crt") CA certificates from $(basename "$ca_deb")"
else
    say "  WARNING: no usable ca-certificates .deb: the bundle is empty (no TLS in images)"
    : >"$t/etc/ssl/certs/ca-certificates.crt"
    ca_version=0-r0
fi
ln -s certs/ca-certificates.crt "$t/etc/ssl/cert.pem"
create "$t" ca-certificates-bundle "$ca_version" noarch "$noarch" --origin ca-certificates \
    --license "MPL-2.0 AND MIT" --description "Pre generated bundle of Mozilla certificates" \
    --url https://www.mozilla.org/en-US/about/governance/policies/security-group/certs/

# ---------------------------------------------------------------------------------------------
# alpine-baselayout-data and alpine-baselayout: the directory tree and /etc files of Alpine.
baselayout() { # DEST ARCH
    local dest=$1 arch=$2 t u
    t=$(fresh_tree baselayout-data)
    mkdir -p "$t/etc"
    cat >"$t/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
lp:x:4:7:lp:/var/spool/lpd:/sbin/nologin
sync:x:5:0:sync:/sbin:/bin/sync
shutdown:x:6:0:shutdown:/sbin:/sbin/shutdown
halt:x:7:0:halt:/sbin:/sbin/halt
mail:x:8:12:mail:/var/mail:/sbin/nologin
news:x:9:13:news:/usr/lib/news:/sbin/nologin
uucp:x:10:14:uucp:/var/spool/uucppublic:/sbin/nologin
cron:x:16:16:cron:/var/spool/cron:/sbin/nologin
ftp:x:21:21::/var/lib/ftp:/sbin/nologin
sshd:x:22:22:sshd:/dev/null:/sbin/nologin
games:x:35:35:games:/usr/games:/sbin/nologin
ntp:x:123:123:NTP:/var/empty:/sbin/nologin
guest:x:405:100:guest:/dev/null:/sbin/nologin
nobody:x:65534:65534:nobody:/:/sbin/nologin
EOF
    cat >"$t/etc/group" <<'EOF'
root:x:0:root
bin:x:1:root,bin,daemon
daemon:x:2:root,bin,daemon
sys:x:3:root,bin
adm:x:4:root,daemon
tty:x:5:
disk:x:6:root
lp:x:7:lp
kmem:x:9:
wheel:x:10:root
floppy:x:11:root
mail:x:12:mail
news:x:13:news
uucp:x:14:uucp
cron:x:16:cron
console:x:17:
audio:x:18:
cdrom:x:19:
dialout:x:20:root
ftp:x:21:
sshd:x:22:
input:x:23:
tape:x:26:root
video:x:27:root
netdev:x:28:
kvm:x:34:kvm
games:x:35:
shadow:x:42:
www-data:x:82:
users:x:100:games
ntp:x:123:
abuild:x:300:
utmp:x:406:
ping:x:999:
nogroup:x:65533:
nobody:x:65534:
EOF
    # root has no password ("*": no login with one); the others are locked ("!")
    while IFS=: read -r u _; do
        if [ "$u" = root ]; then printf '%s:*::0:::::\n' "$u"; else printf '%s:!::0:::::\n' "$u"; fi
    done <"$t/etc/passwd" >"$t/etc/shadow"
    chmod 640 "$t/etc/shadow"
    printf 'localhost\n' >"$t/etc/hostname"
    printf '127.0.0.1\tlocalhost localhost.localdomain\n::1\t\tlocalhost localhost.localdomain\n' >"$t/etc/hosts"
    printf '/dev/cdrom\t/media/cdrom\tiso9660\tnoauto,ro 0 0\n/dev/usbdisk\t/media/usb\tvfat\tnoauto\t0 0\n' >"$t/etc/fstab"
    printf 'af_packet\nipv6\n' >"$t/etc/modules"
    printf 'passwd:\t\tfiles\ngroup:\t\tfiles\nshadow:\t\tfiles\n\nhosts:\t\tfiles dns\n' >"$t/etc/nsswitch.conf"
    printf 'ip\t0\tIP\nicmp\t1\tICMP\ntcp\t6\tTCP\nudp\t17\tUDP\n' >"$t/etc/protocols"
    printf 'ssh\t\t22/tcp\nhttp\t\t80/tcp\t\twww\nhttps\t\t443/tcp\n' >"$t/etc/services"
    printf '# valid login shells\n/bin/sh\n/bin/ash\n' >"$t/etc/shells"
    cat >"$t/etc/profile" <<'EOF'
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export PAGER=less
umask 022
for script in /etc/profile.d/*.sh ; do
	if [ -r "$script" ] ; then
		. "$script"
	fi
done
unset script
EOF
    ln -s ../proc/mounts "$t/etc/mtab"
    create "$t" alpine-baselayout-data "$BASELAYOUT_VERSION" "$arch" "$dest" \
        --origin alpine-baselayout --license GPL-2.0-only --url https://alpinelinux.org \
        --description "Alpine base dir structure and init scripts" --replaces alpine-baselayout

    t=$(fresh_tree baselayout)
    (
        cd "$t"
        mkdir -p bin dev etc/apk etc/conf.d etc/crontabs etc/init.d etc/modprobe.d \
            etc/modules-load.d etc/network/if-down.d etc/network/if-post-down.d \
            etc/network/if-pre-up.d etc/network/if-up.d etc/opt etc/periodic/15min \
            etc/periodic/daily etc/periodic/hourly etc/periodic/monthly etc/periodic/weekly \
            etc/profile.d etc/sysctl.d home lib/firmware lib/modules-load.d lib/sysctl.d \
            media/cdrom media/floppy media/usb mnt opt proc root run sbin srv sys tmp \
            usr/bin usr/lib usr/local/bin usr/local/lib usr/local/share usr/sbin \
            usr/share/man usr/share/misc var/cache var/empty var/lib/misc var/local var/log \
            var/mail var/opt var/spool/cron var/tmp
        chmod 555 proc sys var/empty
        chmod 700 root
        chmod 1777 tmp var/tmp
        printf '# min\thour\tday\tmonth\tweekday\tcommand\n*/15\t*\t*\t*\t*\trun-parts /etc/periodic/15min\n' >etc/crontabs/root
        chmod 600 etc/crontabs/root
        printf 'Welcome to Alpine!\n\nThis image was built from a local repository made by alpenglow.\n' >etc/motd
        printf 'This directory holds shell scripts sourced by /etc/profile.\n' >etc/profile.d/README
        ln -s ../run/lock var/lock
        ln -s ../run var/run
        ln -s ../mail var/spool/mail
        ln -s ../../../etc/crontabs var/spool/cron/crontabs
    )
    create "$t" alpine-baselayout "$BASELAYOUT_VERSION" "$arch" "$dest" \
        --license GPL-2.0-only --url https://alpinelinux.org \
        --description "Alpine base dir structure and init scripts" \
        --depends "alpine-baselayout-data=$BASELAYOUT_VERSION"
}

# alpine-release (os-release and friends) and alpine-base (the meta package).
release_and_base() { # DEST ARCH
    local dest=$1 arch=$2 t short=${RELEASE_VERSION%%-*}
    t=$(fresh_tree release)
    mkdir -p "$t/etc/secfixes.d" "$t/usr/lib"
    printf '%s\n' "$short" >"$t/etc/alpine-release"
    printf 'Welcome to Alpine Linux %s (alpenglow local build)\nKernel \\r on an \\m (\\l)\n\n' "${short%.*}" >"$t/etc/issue"
    cat >"$t/usr/lib/os-release" <<EOF
NAME="Alpine Linux"
ID=alpine
VERSION_ID=$short
PRETTY_NAME="Alpine Linux v${short%.*} (local: Debian's busybox and musl, built by alpenglow)"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"
EOF
    ln -s ../usr/lib/os-release "$t/etc/os-release"
    printf 'secfixes: {}\n' >"$t/etc/secfixes.d/alpine"
    create "$t" alpine-release "$RELEASE_VERSION" "$arch" "$dest" --origin alpine-base \
        --license MIT --url https://alpinelinux.org --description "Alpine release data" \
        --depends alpine-keys

    t=$(fresh_tree base) # a meta package: no files, only dependencies
    create "$t" alpine-base "$RELEASE_VERSION" "$arch" "$dest" --license MIT \
        --url https://alpinelinux.org --description "Meta package for minimal alpine base" \
        -D alpine-baselayout -D alpine-release -D busybox -D busybox-binsh \
        -D ca-certificates-bundle -D musl
}

# ---------------------------------------------------------------------------------------------
# busybox's applet list: `busybox --list-full`, run directly (the machine's own architecture, or
# a foreign one with binfmt_misc registered) or through qemu-user; empty when neither works.
list_applets() { # BUSYBOX QEMU_NAME
    local bin=$1 qemu
    ( # in a subshell whose stderr is dropped: a binary that dies also makes the shell talk
        "$bin" --list-full ||
            { qemu=$(command -v "qemu-$2-static" || command -v "qemu-$2") && "$qemu" "$bin" --list-full; } ||
            true
    ) 2>/dev/null | sed 's#^/*#/#' | grep -E '^/(usr/)?s?bin/[A-Za-z0-9][A-Za-z0-9._+-]*$' || true
}
native_applets() { # the applet list of the machine's own busybox (if it was downloaded)
    local deb
    deb=$(newest "$out/downloads/$native_debian/busybox-static_*.deb" || true)
    [ -n "$deb" ] || return 0
    mkdir -p "$work/native"
    dpkg-deb -x "$deb" "$work/native" || return 0
    list_applets "$(find "$work/native" -path '*bin/busybox' -type f | head -n 1)" none
}

# The busybox scripts, as Alpine's (alpenglow does not run them by default; it makes the links
# from etc/busybox-paths.d/busybox instead, as apko does).
cat >"$work/busybox.post-install" <<'EOF'
#!/bin/busybox sh

# create the applet links
/bin/busybox --install -s
EOF
cat >"$work/busybox.trigger" <<'EOF'
#!/bin/busybox sh

for i in "$@"; do
	case "$i" in
	/lib/modules/*) [ -d "$i" ] && depmod "${i#/lib/modules/}" ;;
	esac
done
/bin/busybox --install -s
EOF

built=()
for arch in "${arches[@]}"; do
    debian=${DEBIAN[$arch]}
    if ! have_debs "$arch"; then
        [[ " ${skipped[*]-} " == *" $arch "* ]] || skip "$arch" "no .debs in $out/downloads/$debian"
        continue
    fi
    bb_deb=$(newest "$out/downloads/$debian/busybox-static_*.deb")
    musl_deb=$(newest "$out/downloads/$debian/musl_*.deb")
    dest="$out/repo/$arch"

    # Skip an architecture built before from the same inputs (this script, the .debs, the key).
    inputs=$(cat "$0" "$bb_deb" "$musl_deb" "$pub" ${ca_deb:+"$ca_deb"} | sha256sum | cut -c1-32)
    if [ -f "$dest/APKINDEX.tar.gz" ] && [ "$(cat "$dest/.inputs" 2>/dev/null)" = "$inputs" ]; then
        say "== $arch: up to date"
        built+=("$arch")
        continue
    fi
    say "== $arch: packages from $(basename "$bb_deb") and $(basename "$musl_deb")"
    rm -rf "${work:?}/$debian" "$dest.new"
    mkdir -p "$work/$debian/bb" "$work/$debian/musl" "$dest.new"
    if ! { dpkg-deb -x "$bb_deb" "$work/$debian/bb" && dpkg-deb -x "$musl_deb" "$work/$debian/musl"; } 2>"$work/error"; then
        skip "$arch" "cannot unpack its .debs ($(head -n 1 "$work/error")); delete $out/downloads/$debian to download them again"
        rm -rf "$dest.new"
        continue
    fi
    # Debian 13 and unstable keep everything under usr/ (merged-usr): look in both places.
    busybox=$(find "$work/$debian/bb" -path '*bin/busybox' -type f | head -n 1)
    libc=$(find "$work/$debian/musl" -path '*-linux-musl*/libc.so' -type f | head -n 1)
    if [ -z "$busybox" ] || [ -z "$libc" ]; then
        skip "$arch" "no bin/busybox or musl libc.so in the .debs"
        rm -rf "$dest.new"
        continue
    fi
    bb_version=$(apk_version "$(dpkg-deb -f "$bb_deb" Version)")
    musl_version=$(apk_version "$(dpkg-deb -f "$musl_deb" Version)")

    applets=$(list_applets "$busybox" "${QEMU[$arch]}")
    if [ -z "$applets" ]; then
        applets=$(native_applets)
        [ -z "$applets" ] || say "  (its busybox does not run here: using the $native_debian applet list)"
    fi
    if [ -z "$applets" ]; then
        skip "$arch" "its busybox does not run here (install qemu-user-static) and no other list"
        rm -rf "$dest.new"
        continue
    fi

    # musl: the C library, installed as Alpine does: /lib/ld-musl-ARCH.so.1 and a link to it.
    t=$(fresh_tree musl)
    mkdir -p "$t/lib"
    cp "$libc" "$t/lib/${LOADER[$arch]}"
    chmod 755 "$t/lib/${LOADER[$arch]}"
    ln -s "${LOADER[$arch]}" "$t/lib/libc.musl-$arch.so.1"
    create "$t" musl "$musl_version" "$arch" "$dest.new" --license MIT \
        --url https://musl.libc.org/ --description "the musl c library (libc) implementation" \
        -P "so:libc.musl-$arch.so.1=1"

    # busybox: the binary, the list of applet links to make, and a `cmd:` for each applet.
    t=$(fresh_tree busybox)
    mkdir -p "$t/bin" "$t/etc/busybox-paths.d"
    cp "$busybox" "$t/bin/busybox"
    chmod 755 "$t/bin/busybox"
    printf '%s\n' "$applets" >"$t/etc/busybox-paths.d/busybox"
    printf 'console\ntty1\ntty2\nttyS0\nttyAMA0\nhvc0\n' >"$t/etc/securetty"
    provides=(-P "cmd:busybox=$bb_version")
    for applet in $(printf '%s\n' "$applets" | sed 's#.*/##' | sort -u); do
        [ "$applet" = busybox ] || [ "$applet" = sh ] || provides+=(-P "cmd:$applet=$bb_version")
    done
    create "$t" busybox "$bb_version" "$arch" "$dest.new" --license GPL-2.0-only \
        --url https://busybox.net/ --description "Size optimized toolbox of many common UNIX utilities" \
        -D "so:libc.musl-$arch.so.1" "${provides[@]}" \
        --script "post-install=$work/busybox.post-install" \
        --script "post-upgrade=$work/busybox.post-install" \
        --script "trigger=$work/busybox.trigger" \
        --triggers /bin --triggers /usr/bin --triggers /sbin --triggers /usr/sbin \
        --triggers '/lib/modules/*'

    # busybox-binsh: /bin/sh. It provides /bin/sh at priority 100, as Alpine's does.
    t=$(fresh_tree busybox-binsh)
    mkdir -p "$t/bin"
    ln -s /bin/busybox "$t/bin/sh"
    create "$t" busybox-binsh "$bb_version" "$arch" "$dest.new" --origin busybox \
        --license GPL-2.0-only --url https://busybox.net/ --description "busybox ash /bin/sh" \
        -D "busybox=$bb_version" -P /bin/sh -P "cmd:sh=$bb_version" --provider-priority 100

    baselayout "$dest.new" "$arch"
    release_and_base "$dest.new" "$arch"
    cp "$noarch"/*.apk "$dest.new/"

    # The signed index, then check every signature with the public key alone.
    "$ag" apk --keys-dir "$out/keys" index -o "$dest.new/APKINDEX.tar.gz" --sign-key "$key" \
        --description "alpenglow local repository ($arch)" "$dest.new"/*.apk
    "$ag" apk --keys-dir "$out/keys" verify "$dest.new"/*.apk "$dest.new/APKINDEX.tar.gz" >/dev/null
    printf '%s\n' "$inputs" >"$dest.new/.inputs"
    rm -rf "$dest"
    mv "$dest.new" "$dest"
    apks=("$dest"/*.apk)
    say "  ${#apks[@]} packages, index signed and verified"
    built+=("$arch")
done

# ---------------------------------------------------------------------------------------------
# An image configuration for this repository (examples/alpine-base.yaml with paths relative to
# OUT_DIR, where this file is written).
{
    say "# Written by make-local-repo.sh from examples/alpine-base.yaml; paths are relative to"
    say "# this file's directory, the repository's output directory."
    sed -E 's#^([[:space:]]*- )local/#\1#' "$here/alpine-base.yaml"
} >"$out/alpine-base.yaml.tmp"
mv "$out/alpine-base.yaml.tmp" "$out/alpine-base.yaml"

say ""
if [ ${#built[@]} = 0 ]; then
    say "ERROR: no architecture could be built" >&2
    exit 1
fi
say "repository: $out/repo (${built[*]})"
[ ${#skipped[@]} = 0 ] || say "skipped:    ${skipped[*]}"
say "public key: $pub"
say "image:      $ag build $out/alpine-base.yaml --arch all"
