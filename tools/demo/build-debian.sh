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

# Build the real guest: a Debian 12 golden image that boots under UEFI from
# an iSCSI LUN and runs systemd, cloud-init and sshd from that LUN.
#   tools/demo/build-debian.sh OUT_DIR      -> OUT_DIR/bmi-debian.raw
#
# Everything comes from Debian's packages through debootstrap (the mirror
# of this machine's apt sources, or BMI_DEBIAN_MIRROR). No loop device, no
# mount of the image: the filesystems are built with `mke2fs -d` and mtools.
#
# The disk (GPT, BMI_DEBIAN_DISK_MIB, default 3072 MiB):
#   1 ESP (FAT, label BMI-ESP): systemd-boot, Debian's kernel and initrd
#   2 root (ext4, label bmi-root): Debian 12 (minbase + systemd, open-iscsi,
#     cloud-init, openssh-server)
# Boot path (checked with Debian 12's open-iscsi 2.1.8): iPXE's sanboot
# leaves an iBFT; the kernel command line has `iscsi_auto`, so open-iscsi's
# initramfs script brings up the nic the iBFT names (`iscsistart -N`, then
# DHCP on that nic only) and logs in from the iBFT (`iscsistart -b`, with
# its CHAP credentials). No other nic is touched.
# cloud-init reads the config drive (the `config-2` ISO 9660 on the node's
# second LUN) and applies hostname, SSH keys and user-data; its network
# configuration is disabled, so the nic that carries the root disk stays as
# the initramfs set it (a reconfigured or restarted boot nic would take the
# root disk away).
# Every clone starts as a new machine: no machine-id and no SSH host keys
# are in the image (systemd and cloud-init make them at first boot).
#
# A second run with the same inputs returns at once (stamp file).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: build-debian.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
image=$out/bmi-debian.raw
SUITE=bookworm
DISK_MIB=${BMI_DEBIAN_DISK_MIB:-3072}
ESP_MIB=128
PKGS=linux-image-amd64,systemd,systemd-sysv,udev,kmod,initramfs-tools
PKGS+=,busybox,open-iscsi,cloud-init,openssh-server,sudo,iproute2
PKGS+=,isc-dhcp-client,systemd-boot-efi,e2fsprogs,zstd
# debootstrap does not resolve virtual packages: python3-cryptography (for
# cloud-init) needs python3-cffi-backend-api-*, which this one provides.
PKGS+=,python3-cffi-backend
log() { printf '[build-debian] %s\n' "$*"; }

mirror() {  # the first Debian mirror of this machine's apt sources
    local m
    m=$(grep -h -E '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources \
        /etc/apt/sources.list 2>/dev/null |
        grep -v -e security -e '^#' | awk '{print ($1 == "deb") ? $2 : $2}' |
        head -n1 || true)
    echo "${m:-http://deb.debian.org/debian}"
}
MIRROR=${BMI_DEBIAN_MIRROR:-$(mirror)}
command -v debootstrap >/dev/null || { echo "build-debian: debootstrap" \
    "missing: run tools/install-deps.sh" >&2; exit 1; }

# shellcheck source=tools/demo/uefi-disk.sh
. "$here/tools/demo/uefi-disk.sh"
scripts_sum=$(cat "$0" "$here/tools/demo/uefi-disk.sh" | sha256sum |
    cut -c1-16)
inputs="$scripts_sum $SUITE $MIRROR $DISK_MIB"
built=$(cat "$image.inputs" 2>/dev/null || true)
if [ -s "$image" ] && [ "$built" = "$inputs" ]; then
    log "up to date: $image"
    exit 0
fi

work=$(mktemp -d "$out/build-debian.XXXXXX")
# Kept on failure (its logs say why), removed on success.
trap 'rc=$?; if [ $rc = 0 ]; then rm -rf "$work"; else
    echo "build-debian: see $work" >&2; fi' EXIT
rootd=$work/root
log "debootstrap $SUITE from $MIRROR (a few minutes)"
debootstrap --variant=minbase --include="$PKGS" "$SUITE" "$rootd" \
    "$MIRROR" > "$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    echo "build-debian: debootstrap failed" >&2
    exit 1
}

# --- configuration ----------------------------------------------------------
echo 'ISCSI_AUTO=true' > "$rootd/etc/iscsi/iscsi.initramfs"
# A small initramfs: only the modules listed here (and those open-iscsi's
# hook adds) instead of Debian's MODULES=most (initramfs-tools 0.142): 37
# MiB gzip'd (125 MiB unpacked, most of it every nic and SCSI driver),
# which iPXE reads over the SAN before the kernel starts and the kernel
# unpacks under TCG. Compressed with zstd, initramfs.conf's default, which
# fell back to gzip without the zstd package. The list: the lab's nics
# (e1000 for the busybox VMs' shape, virtio for the guest's) and the iBFT
# reader (the root disk is behind them), the local disks of
# tools/bench_guest.py's baseline (SATA: ahci, sd_mod), the root's ext4 and
# the crc32c its metadata checksums need (crc32c-intel needs SSE4.2, which
# TCG's CPU may not have).
printf 'MODULES=list\n' > "$rootd/etc/initramfs-tools/conf.d/bmi-modules"
printf '%s\n' e1000 virtio_net virtio_pci iscsi_ibft iscsi_tcp ahci sd_mod \
    ext4 crc32c_generic >> "$rootd/etc/initramfs-tools/modules"
printf 'LABEL=bmi-root / ext4 errors=remount-ro 0 1\n' > "$rootd/etc/fstab"
# 2 MiB readahead on SCSI disks instead of the kernel's 128 KiB: the root
# is an iSCSI LUN, where every read is a round trip through an emulated nic
# under TCG, and systemd and cloud-init (Python) read many small files
# laid out together by debootstrap. tools/bench_guest.py, December 2026,
# SSH login bmi/local: 1.15x and 0.94x in two runs with it, 1.09x and
# 1.25x in two without (one boot each per run: noisy). The baseline's
# local SATA disk gets the same rule.
mkdir -p "$rootd/etc/udev/rules.d"
rule='ACTION=="add|change", SUBSYSTEM=="block", KERNEL=="sd[a-z]",'
rule+=' ATTR{queue/read_ahead_kb}="2048"'
printf '%s\n' "$rule" > "$rootd/etc/udev/rules.d/60-bmi-readahead.rules"
echo bmi-debian > "$rootd/etc/hostname"
cat > "$rootd/etc/cloud/cloud.cfg.d/90-bmi.cfg" <<'CFG'
# bmi: the config drive is the only data source (LUN 2, label config-2).
datasource_list: [ ConfigDrive, None ]
# The boot nic carries the iSCSI root disk: cloud-init must not rewrite or
# restart it (Nova's network_data.json describes it too).
network: {config: disabled}
# The hostname the config drive sets resolves from /etc/hosts (127.0.1.1):
# the network has no DNS server, and sudo looks its host up at every call
# (20 s of resolver timeouts per sudo without this; tools/bench_guest.py).
manage_etc_hosts: localhost
# The flavor's ephemeral disk and swap are LUNs of their own, labelled
# ephemeral0 and swap1 by bmi. Nova 34.0.0's ironic driver names the
# ephemeral disk /dev/sda1 in the metadata (Ironic's partition images put
# it there; here it is the ESP), and cloud-init 22.4.2 looks that name up
# first and skips it (a partition): /mnt would stay empty. Both by label
# (a LABEL= spec is skipped too; a /dev/disk/by-label path is not); swap
# by label rather than the /dev/sdX name it finds by type.
mounts:
  - [ephemeral0, null]
  - [swap, null]
  - [/dev/disk/by-label/ephemeral0, /mnt]
  - [/dev/disk/by-label/swap1, none, swap, sw, "0", "0"]
CFG
# A fresh identity for every clone.
: > "$rootd/etc/machine-id"
rm -f "$rootd/var/lib/dbus/machine-id" "$rootd"/etc/ssh/ssh_host_*
rm -rf "$rootd"/var/cache/apt/archives/*.deb "$rootd"/var/lib/apt/lists/*
log "update-initramfs (with open-iscsi's iBFT login)"
chroot "$rootd" update-initramfs -u -k all > "$work/initramfs.log" 2>&1 || {
    tail -n 30 "$work/initramfs.log" >&2
    echo "build-debian: update-initramfs failed" >&2
    exit 1
}
kver=$(basename "$(ls -d "$rootd"/lib/modules/* | head -n1)")

# --- the disk (tools/demo/uefi-disk.sh) ------------------------------------
uefi_disk "$image" "$DISK_MIB" "$ESP_MIB" "$rootd" "$work" \
    "$rootd/usr/lib/systemd/boot/efi/systemd-bootx64.efi" \
    "$rootd/boot/vmlinuz-$kver" "$rootd/boot/initrd.img-$kver" \
    "Debian 12 on bmi ($kver)" \
    "root=LABEL=bmi-root ro iscsi_auto console=ttyS0,115200"
echo "$inputs" > "$image.inputs"
log "built $image ($DISK_MIB MiB, Debian $SUITE, kernel $kver)"
