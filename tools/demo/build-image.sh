#!/usr/bin/env bash
# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

# Build the demo's golden image: a small raw disk that boots under UEFI from
# an iSCSI LUN and runs its OS from that LUN.
#   tools/demo/build-image.sh OUT_DIR      -> OUT_DIR/bmi-demo.raw
#
# Everything comes from Debian packages: the kernel is `apt-get download`ed
# and unpacked (never installed); busybox-static, open-iscsi's iscsistart
# and systemd-boot come from the host's packages. No loop device, no mount:
# the filesystems are built with `mke2fs -d` and mtools.
#
# The disk (GPT, 256 MiB):
#   1 ESP (FAT, label BMI-ESP): /EFI/BOOT/BOOTX64.EFI (systemd-boot, no
#     menu), /loader/entries/bmi.conf, /bmi/vmlinuz, /bmi/initrd.img
#   2 root (ext4, label bmi-root): busybox and /sbin/init
# The initramfs loads e1000 + iSCSI + ext4, brings the nic up and logs in to
# the target iPXE described in the iBFT (`iscsistart -N`, `-b`, with the
# iBFT's CHAP credentials), mounts the LUN's root partition and
# switch_roots into it. The root's init prints `BMI-BOOT-OK node=<name>`
# (the name is the part of the iBFT initiator IQN after the last ':'),
# prints `BMI-FOUND <name>` for every file an earlier node left in
# /var/lib/bmi/nodes, writes its own, syncs and powers off.
#
# A second run with the same inputs returns at once (stamp file).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: build-image.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
image=$out/bmi-demo.raw
debs=$out/debs
KERNEL_META=${BMI_DEMO_KERNEL:-linux-image-amd64}
DISK_MIB=256
ESP_MIB=64
log() { printf '[build-image] %s\n' "$*"; }

# --- what to build from -----------------------------------------------------
resolve_kernel() {
    apt-cache depends "$KERNEL_META" 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}
kernel_pkg=$(resolve_kernel)
if [ -z "$kernel_pkg" ] && [ "$(id -u)" = 0 ]; then
    log "apt-get update (no package lists)"
    apt-get update -qq
    kernel_pkg=$(resolve_kernel)
fi
if [ -z "$kernel_pkg" ]; then
    case $KERNEL_META in
    linux-image-[0-9]*) kernel_pkg=$KERNEL_META ;;
    *)
        echo "build-image: cannot resolve $KERNEL_META (apt-get update?)" >&2
        exit 1
        ;;
    esac
fi
for bin in /bin/busybox /usr/sbin/iscsistart; do
    [ -x "$bin" ] || { echo "build-image: $bin missing: run" \
        "tools/install-deps.sh demo" >&2; exit 1; }
done
pkgver() { dpkg-query -W -f='${Version}' "$1"; }
# shellcheck source=tools/demo/uefi-disk.sh
. "$here/tools/demo/uefi-disk.sh"
scripts_sum=$(cat "$0" "$here/tools/demo/guest-probe.sh" \
    "$here/tools/demo/uefi-disk.sh" | sha256sum |
    cut -c1-16)
inputs="$scripts_sum $kernel_pkg \
busybox-static=$(pkgver busybox-static) open-iscsi=$(pkgver open-iscsi)"
built=$(cat "$image.inputs" 2>/dev/null || true)
if [ -s "$image" ] && [ "$built" = "$inputs" ]; then
    log "up to date: $image"
    exit 0
fi

# --- fetch ------------------------------------------------------------------
mkdir -p "$debs"
fetch() {  # fetch PACKAGE: the .deb of PACKAGE's candidate version in $debs
    local pkg=$1 ver f
    ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
    f=$(ls "$debs/${pkg}_${ver/*:/}_"*.deb 2>/dev/null | head -n1 || true)
    if [ -z "$f" ]; then
        log "apt-get download $pkg" >&2
        (cd "$debs" && apt-get download -q "$pkg" 2>&1 |
            grep -v -e '^W: Download is performed unsandboxed' -e '^Get:' \
                 -e '^Fetched' >&2 || true)
        f=$(ls "$debs/${pkg}_${ver/*:/}_"*.deb 2>/dev/null | head -n1 || true)
        if [ -z "$f" ]; then
            echo "build-image: download of $pkg failed" >&2
            exit 1
        fi
    fi
    echo "$f"
}
kernel_deb=$(fetch "$kernel_pkg")
sdboot_deb=$(fetch systemd-boot-efi)

work=$(mktemp -d "$out/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "unpacking $(basename "$kernel_deb")"
dpkg-deb -x "$kernel_deb" "$work/kernel"
dpkg-deb -x "$sdboot_deb" "$work/sdboot"
kver=$(ls "$work/kernel/lib/modules")
kmods=$work/kernel/lib/modules/$kver

# --- initramfs --------------------------------------------------------------
ird=$work/initramfs
mkdir -p "$ird"/{bin,sbin,dev,proc,sys,run,tmp,newroot,etc/iscsi,lib64}
mkdir -p "$ird"/var/lib/iscsi "$ird"/run/lock/iscsi
cp /bin/busybox "$ird/bin/busybox"
cp /usr/sbin/iscsistart "$ird/sbin/iscsistart"
# iscsistart's shared libraries, at the paths the loader looks for them
ldd /usr/sbin/iscsistart | awk '/=> \// {print $3} /^[ \t]*\// {print $1}' |
while read -r lib; do
    mkdir -p "$ird/$(dirname "$lib")"
    cp -L "$lib" "$ird/$lib"
done

# Kernel modules: the closure of what the boot path needs, from modules.dep.
WANT=(e1000 iscsi_ibft iscsi_tcp sd_mod ext4 crc32c_generic vfat nls_cp437
    nls_ascii)
busybox depmod -b "$work/kernel" "$kver"
declare -A need=()
add_mod() {  # add_mod NAME-or-PATH: the module and its dependencies
    local m=$1 line path deps
    case $m in
    */*) path=$m ;;
    *)
        path=$(grep -E "(^|/)${m//_/[_-]}\.ko:" "$kmods/modules.dep" |
            cut -d: -f1 | head -n1)
        if [ -z "$path" ]; then
            # built into the kernel: nothing to load
            grep -qE "/${m//_/[_-]}\.ko$" "$kmods/modules.builtin" &&
                return 0
            echo "build-image: no module $m in $kver" >&2
            exit 1
        fi
        ;;
    esac
    [ -n "${need[$path]:-}" ] && return 0
    need[$path]=1
    line=$(grep -E "^${path//./\\.}:" "$kmods/modules.dep")
    deps=${line#*:}
    for d in $deps; do
        add_mod "$d"
    done
}
for m in "${WANT[@]}"; do
    add_mod "$m"
done
for path in "${!need[@]}"; do
    mkdir -p "$ird/lib/modules/$kver/$(dirname "$path")"
    cp "$kmods/$path" "$ird/lib/modules/$kver/$path"
done
cp "$kmods/modules.builtin" "$kmods/modules.order" "$ird/lib/modules/$kver/"
busybox depmod -b "$ird" "$kver"
log "initramfs: ${#need[@]} modules of $kver"

cat > "$ird/init" <<EOF
#!/bin/busybox sh
# bmi demo initramfs: log in to the iSCSI target of the iBFT, mount the
# root partition of its LUN and switch_root into it.
MODULES="${WANT[*]}"
EOF
cat >> "$ird/init" <<'EOF'
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "bmi-initramfs: $*"; }
fail() {
    echo "BMI-BOOT-FAIL $*"
    sync
    poweroff -f
}
for m in $MODULES; do modprobe "$m" || fail "modprobe $m"; done
ibft=/sys/firmware/ibft
[ -r $ibft/initiator/initiator-name ] || fail "no iBFT (not booted by iPXE sanhook?)"
initiator=$(cat $ibft/initiator/initiator-name)
say "initiator $initiator, target $(cat $ibft/target0/target-name 2>/dev/null)"
iscsistart -N >/tmp/iscsistart.log 2>&1 || {
    cat /tmp/iscsistart.log; fail "iscsistart -N (network from iBFT)"; }
# The default route that DHCP gave iPXE (the iBFT's gateway), as any OS
# configured by DHCP has it: probes of the gateway's other addresses then
# meet the gateway's own defences, not this node's routing table.
gw=$(cat $ibft/ethernet0/gateway 2>/dev/null)
case $gw in
''|0.0.0.0) ;;
*) ip route replace default via "$gw" 2>/dev/null &&
    say "default route via $gw" ;;
esac
iscsistart -b >>/tmp/iscsistart.log 2>&1 || {
    cat /tmp/iscsistart.log; fail "iscsistart -b (login from iBFT)"; }
root=
for i in $(seq 100); do
    root=$(findfs LABEL=bmi-root 2>/dev/null) && break
    sleep 0.1
done
[ -n "$root" ] || fail "no bmi-root partition on the LUN"
mount -t ext4 -o rw "$root" /newroot || fail "mount $root"
say "root $root from the iSCSI LUN"
export BMI_NODE="${initiator##*:}"
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
exec switch_root /newroot /sbin/init
EOF
chmod +x "$ird/init"
(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -6) > "$work/initrd.img"

# --- root filesystem (partition 2) -----------------------------------------
rootd=$work/root
mkdir -p "$rootd"/{bin,sbin,dev,proc,sys,tmp,etc,var/lib/bmi/nodes}
cp /bin/busybox "$rootd/bin/busybox"
for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -s busybox "$rootd/bin/$a"
done
# The probes (guest-probe.sh) log in to targets with iscsistart.
mkdir -p "$rootd/sbin" "$rootd/etc/iscsi" "$rootd/var/lib/iscsi" \
    "$rootd/run/lock/iscsi"
cp /usr/sbin/iscsistart "$rootd/sbin/iscsistart"
ldd /usr/sbin/iscsistart | awk '/=> \// {print $3} /^[ \t]*\// {print $1}' |
while read -r lib; do
    mkdir -p "$rootd/$(dirname "$lib")"
    cp -L "$lib" "$rootd/$lib"
done
cp "$here/tools/demo/guest-probe.sh" "$rootd/sbin/bmi-probe"
chmod +x "$rootd/sbin/bmi-probe"
echo "bmi-demo golden image, kernel $kver" > "$rootd/etc/bmi-release"
cat > "$rootd/sbin/init" <<'EOF'
#!/bin/busybox sh
# bmi demo OS: runs from the node's iSCSI LUN (its COW clone in Ceph).
export PATH=/bin:/sbin
node=${BMI_NODE:-unknown}
echo "BMI-BOOT-OK node=$node"
mount -t tmpfs tmpfs /tmp
# A probe plan on the config drive (LUN 2: a disk whose first bytes are
# "BMI-PLAN"): run the probes and stay up for the peers' probes until
# Ironic powers the node off.
for dev in /dev/sd?; do
    [ -b "$dev" ] || continue
    head -c 4096 "$dev" 2>/dev/null | tr -d '\000' > /tmp/plan
    if [ "$(head -c 8 /tmp/plan)" = BMI-PLAN ]; then
        bmi-probe /tmp/plan
        while :; do sleep 3600; done
    fi
done
for f in /var/lib/bmi/nodes/*; do
    [ -f "$f" ] || continue
    [ "${f##*/}" = "$node" ] && continue
    echo "BMI-FOUND $(cat "$f")"
done
echo "$node" > "/var/lib/bmi/nodes/$node"
sync
mount -o remount,ro /
sync
echo "BMI-POWEROFF node=$node"
poweroff -f
EOF
chmod +x "$rootd/sbin/init"

# --- the disk (tools/demo/uefi-disk.sh) ------------------------------------
uefi_disk "$image" "$DISK_MIB" "$ESP_MIB" "$rootd" "$work" \
    "$work/sdboot/usr/lib/systemd/boot/efi/systemd-bootx64.efi" \
    "$work/kernel/boot/vmlinuz-$kver" "$work/initrd.img" \
    "bmi demo ($kver)" "console=ttyS0,115200 quiet"
echo "$inputs" > "$image.inputs"
log "built $image ($DISK_MIB MiB, kernel $kver)"
