#!/bin/sh
# Debian packages for the lab network (checked on Debian 12, Dec 2026):
# Open vSwitch 3.1 (userspace datapath), dnsmasq-base 2.90 (DHCP only,
# --port=0), nginx-light 1.22, ethtool (tx checksum offload off on
# veth/internal ports), tcpdump (isolation probes), iputils-ping, sudo
# (HIL's ovs driver runs "sudo ovs-vsctl" even as root).
# About 17 s. Postinst starts no daemon here (no systemd).
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends \
    openvswitch-switch dnsmasq-base nginx-light ethtool tcpdump \
    iputils-ping sudo
