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

# Sourced by build-image.sh and build-debian.sh: the disk both images share.
#
# uefi_disk IMAGE DISK_MIB ESP_MIB ROOT_DIR WORK SDBOOT_EFI VMLINUZ INITRD \
#     TITLE OPTIONS
# writes IMAGE, a GPT disk of DISK_MIB MiB:
#   1 ESP (FAT, label BMI-ESP, ESP_MIB MiB): systemd-boot as the removable
#     loader /EFI/BOOT/BOOTX64.EFI (no menu), /loader/entries/bmi.conf
#     (TITLE, the kernel command line OPTIONS), /bmi/vmlinuz, /bmi/initrd.img
#   2 root (ext4, label bmi-root): the tree ROOT_DIR, the rest of the disk
# No loop device and no mount: `mke2fs -d` and mtools write the filesystems
# into files under WORK, dd places them (sparse) after sfdisk's table.

uefi_disk() {
    local image=$1 disk_mib=$2 esp_mib=$3 rootd=$4 work=$5 sdboot=$6
    local vmlinuz=$7 initrd=$8 title=$9 options=${10}
    local esp=$work/esp.img disk=$work/disk.raw root_mib
    root_mib=$((disk_mib - esp_mib - 2))

    truncate -s "${root_mib}M" "$work/root.img"
    mke2fs -q -F -t ext4 -L bmi-root -d "$rootd" "$work/root.img"

    mkfs.vfat -C -n BMI-ESP "$esp" $((esp_mib * 1024)) >/dev/null
    export MTOOLS_SKIP_CHECK=1
    mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries ::/bmi
    mcopy -i "$esp" "$sdboot" ::/EFI/BOOT/BOOTX64.EFI
    mcopy -i "$esp" "$vmlinuz" ::/bmi/vmlinuz
    mcopy -i "$esp" "$initrd" ::/bmi/initrd.img
    printf 'default bmi.conf\ntimeout 0\neditor no\n' > "$work/loader.conf"
    printf 'title %s\nlinux /bmi/vmlinuz\ninitrd /bmi/initrd.img\n' \
        "$title" > "$work/bmi.conf"
    printf 'options %s\n' "$options" >> "$work/bmi.conf"
    mcopy -i "$esp" "$work/loader.conf" ::/loader/loader.conf
    mcopy -i "$esp" "$work/bmi.conf" ::/loader/entries/bmi.conf

    truncate -s "${disk_mib}M" "$disk"
    sfdisk -q "$disk" <<CFG
label: gpt
start=1MiB, size=${esp_mib}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=ESP
start=$((esp_mib + 1))MiB, size=${root_mib}MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=bmi-root
CFG
    dd if="$esp" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
    dd if="$work/root.img" of="$disk" bs=1M seek=$((esp_mib + 1)) \
        conv=notrunc,sparse status=none
    mv "$disk" "$image"
}
