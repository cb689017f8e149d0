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

# Install what bmi_driver's tests and demo need on a Debian 12 machine, as
# root.
# Idempotent: a second run only checks and returns quickly.
#   tools/install-deps.sh [base|demo]
#     base: Ceph, tgt, iSCSI initiators, QEMU/iPXE/libvirt/OVMF, the lab
#           network (Open vSwitch, dnsmasq, nginx), the Python venv and the
#           real HIL's Python 2.7 venv (make test and make demo alike)
#     demo: the same
#   tools/install-deps.sh --link-bindings VENV
#     only expose Debian's rbd/rados (and libvirt) bindings to VENV (tox)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-base}
VENV=${BMI_VENV:-$here/.venv}
STAMP_DIR=$here/.state
mkdir -p "$STAMP_DIR"

APT_BASE=(ceph-mon ceph-osd ceph-mgr ceph-common python3-rbd python3-rados
    tgt tgt-rbd libiscsi-bin qemu-utils qemu-block-extra open-iscsi)
APT_DEMO=(qemu-system-x86 ipxe-qemu ovmf
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
    libvirt-daemon-system python3-libvirt
    syslinux syslinux-common mtools dosfstools busybox-static cpio fdisk
    e2fsprogs)
# The real guest (tools/demo/build-debian.sh) and the config drives Ironic
# builds from JSON (openstacksdk's configdrive.pack runs genisoimage); the
# test's SSH login.
APT_DEMO+=(debootstrap genisoimage openssh-client)
# The lab network (checked on Debian 12, Dec 2026): Open vSwitch 3.1
# (userspace datapath), dnsmasq-base 2.90 (DHCP only), nginx-light 1.22,
# ethtool (tx checksum offload off on internal ports), iputils-ping, sudo
# (HIL's ovs driver runs "sudo ovs-vsctl" even as root).
APT_NET=(openvswitch-switch dnsmasq-base nginx-light ethtool iputils-ping
    sudo tcpdump iproute2)
# Several conductors (tests/multi, make bench; checked on Debian 12, Dec
# 2026): MariaDB 10.11 as Ironic's shared database (Ironic removed
# PostgreSQL), etcd 3.4 for the plugin's tooz locks (etcd3+http).
APT_MULTI=(mariadb-server etcd-server)
# The conductor formats ephemeral and swap disks
# (bmi_driver/storage/ceph/scratch.py): mkfs.ext2/3/4, mkfs.xfs, mkfs.vfat,
# mkswap; blkid in the tests.
APT_BASE+=(e2fsprogs xfsprogs dosfstools util-linux)
# make test boots VMs too (tests/functional/test_e2e_boot.py)
APT_BASE+=("${APT_DEMO[@]}" "${APT_NET[@]}" "${APT_MULTI[@]}")

log() { printf '[install-deps] %s\n' "$*"; }

apt_install() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
            grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps: need root to apt-get install: ${missing[*]}" >&2
        exit 1
    fi
    log "apt-get install ${missing[*]}"
    # no daemon may be started by package scripts
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
    fi
    export DEBIAN_FRONTEND=noninteractive
    local stamp=$STAMP_DIR/apt-updated
    if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +720)" ]; then
        apt-get update -qq
        touch "$STAMP_DIR/apt-updated"
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pick_python() {
    # Ironic 39 needs Python >= 3.11; Debian's rbd/rados bindings are
    # built for 3.11.
    for py in "${BMI_PYTHON:-}" python3.11 python3 /usr/bin/python3; do
        [ -n "$py" ] || continue
        command -v "$py" >/dev/null 2>&1 || continue
        local is311='import sys; sys.exit(sys.version_info[:2] != (3, 11))'
        if "$py" -c "$is311" 2>/dev/null &&
                "$py" -c 'import venv, ensurepip' 2>/dev/null; then
            command -v "$py"; return 0
        fi
    done
    apt_install python3-venv
    echo /usr/bin/python3
}

link_bindings() {
    # Debian's rbd/rados (and libvirt) bindings are not on PyPI: expose just
    # those modules to a venv through a .pth file pointing at symlinks.
    local venv=$1 site
    site=$("$venv/bin/python" -c \
        'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    mkdir -p "$venv/debian-bindings"
    local dist=/usr/lib/python3/dist-packages
    for m in "$dist"/rados.cpython-311-*.so "$dist"/rbd.cpython-311-*.so \
        "$dist"/libvirtmod*.cpython-311-*.so "$dist"/libvirt*.py; do
        [ -e "$m" ] && ln -sf "$m" "$venv/debian-bindings/"
    done
    echo "$venv/debian-bindings" > "$site/bmi-debian-bindings.pth"
}

make_venv() {
    local reqs_hash
    reqs_hash=$(cat "$here/requirements.txt" "$here/test-requirements.txt" \
        "$here/setup.cfg" | sha256sum | cut -c1-16)
    local have
    have=$(cat "$VENV/.bmi-reqs" 2>/dev/null || true)
    if [ -x "$VENV/bin/python" ] && [ "$have" = "$reqs_hash" ]; then
        return 0
    fi
    local py
    py=$(pick_python)
    log "creating venv $VENV with $py"
    [ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
    link_bindings "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -r "$here/requirements.txt" \
        -r "$here/test-requirements.txt"
    "$VENV/bin/pip" install -q --no-deps -e "$here"
    "$VENV/bin/python" -c 'import rbd, rados, ironic'
    echo "$reqs_hash" > "$VENV/.bmi-reqs"
}

# The lab's OpenStack services, each in a venv of its own (their
# dependencies are neither Ironic's nor each other's), pinned by
# tools/lab/<name>-constraints.txt; rebuilt when that file changes.
# service_venv NAME VENV BINDINGS IMPORTS PACKAGE...
#   BINDINGS yes: Debian's rbd/rados bindings in the venv (Glance's store)
#   IMPORTS: the python -c line that proves the venv works
service_venv() {
    local name=$1 venv=$2 bindings=$3 imports=$4
    shift 4
    local constraints=$here/tools/lab/$name-constraints.txt stamp have py
    stamp=$(sha256sum < "$constraints" | cut -c1-16)
    have=$(cat "$venv/.bmi-$name" 2>/dev/null || true)
    if [ -x "$venv/bin/python" ] && [ "$have" = "$stamp" ]; then
        return 0
    fi
    py=$(pick_python)
    log "creating $name's venv $venv ($*)"
    [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
    if [ "$bindings" = yes ]; then
        link_bindings "$venv"
    fi
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q -c "$constraints" "$@"
    "$venv/bin/python" -c "$imports"
    echo "$stamp" > "$venv/.bmi-$name"
}

if [ "$what" = --link-bindings ]; then
    link_bindings "$2"; exit 0
fi
apt_install "${APT_BASE[@]}"
if [ "$what" = demo ]; then
    apt_install "${APT_DEMO[@]}"
fi
make_venv
state=$(cd "${BMI_STATE:-$here/.state}" && pwd)
# Glance 31.0.0 (OpenStack 2025.2): tools/lab/glance.py; its rbd store
# needs Debian's bindings as the plugin does.
service_venv glance "$state/glance/venv" yes \
    'import rbd, rados, glance_store, glance' glance==31.0.0
# Nova 34.0.0 (OpenStack 2026.2): the harness tools/lab/nova_harness.py;
# its ConfigDriveBuilder runs genisoimage (APT_DEMO).
service_venv nova "$state/nova/venv" no 'import nova.virt.ironic.driver' \
    nova==34.0.0
# Neutron 29.0.0's API (no agents), served by gunicorn on its own MariaDB
# (PyMySQL): tools/lab/neutron.py.
service_venv neutron "$state/neutron/venv" no 'import neutron, pymysql' \
    neutron==29.0.0 gunicorn PyMySQL
# bmi_driver's ML2 mechanism driver bmi_hil (bmi_driver/network/ml2_hil.py)
# runs inside that Neutron: this checkout, editable and without
# dependencies (the driver imports only neutron-lib and oslo, Neutron's
# own), so the lab's Neutron loads the driver of the tree under test.
# Reinstalled when setup.cfg (its entry points) changes.
neutron_driver() {
    local venv=$state/neutron/venv stamp
    stamp=$(printf '%s\n' "$here" | cat - "$here/setup.cfg" | sha256sum |
        cut -c1-16)
    if [ "$(cat "$venv/.bmi-driver" 2>/dev/null || true)" = "$stamp" ]; then
        return 0
    fi
    log "installing bmi_driver (ML2 driver bmi_hil) into neutron's venv"
    "$venv/bin/pip" install -q --no-deps -e "$here"
    "$venv/bin/python" -c 'import bmi_driver.network.ml2_hil'
    echo "$stamp" > "$venv/.bmi-driver"
}
neutron_driver
# The real HIL (not on PyPI): its source tarball and py2 constraints are in
# ../shared/vendor beside the checkout (BMI_HIL_VENDOR names another
# place); installed into $BMI_STATE/hil/hil-venv under pyenv's Python
# 2.7.18, cached.
HIL_VENDOR=${BMI_HIL_VENDOR:-$(dirname "$here")/shared/vendor}
if [ ! -e "${BMI_STATE:-$here/.state}/hil/hil-venv/.lab-installed" ]; then
    log "installing HIL from $HIL_VENDOR"
fi
cd "$here"
BMI_HIL_VENDOR=$HIL_VENDOR "$VENV/bin/python" -m tools.lab.hil_real \
    "${BMI_STATE:-$here/.state}/hil" >/dev/null
log "ok ($what)"
