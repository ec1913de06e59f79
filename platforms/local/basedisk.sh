#!/bin/bash
# Build a UEFI-bootable Debian base disk from an mmdebstrap root, without mounts or loop devices.
#
# Usage: basedisk.sh OUT.qcow2 SIZE_MB WORKDIR SUITE MIRROR PACKAGES
#
# Layout: GPT; partition 1 = ESP (FAT, EFI/BOOT/BOOTX64.EFI from grub-mkstandalone with an
# embedded grub.cfg that finds the root by label); partition 2 = ext4 labelled "rootfs" made
# with mkfs.ext4 -d. Why this way: grub-install needs a real block device, and losetup -P
# makes no partition nodes here (see machine-facts.md). No password and no SSH key are baked
# in: the NoCloud seed of each boot brings its own.
set -euo pipefail

out=$1 size_mb=$2 work=$3 suite=$4 mirror=$5 packages=$6
esp_mb=64
root=$work/root
disk=$work/disk.raw

step() { printf 'basedisk: %s\n' "$*"; }

mkdir -p "$work"
if [ -n "${BASEDISK_ROOT_TAR:-}" ]; then
  # Developer shortcut: reuse a root tarball made earlier by the same mmdebstrap call.
  step "unpacking $BASEDISK_ROOT_TAR"
  mkdir -p "$root"
  tar -C "$root" --numeric-owner -xpf "$BASEDISK_ROOT_TAR"
else
  step "mmdebstrap $suite (packages: $packages)"
  mmdebstrap --variant=minbase \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    --aptopt='Acquire::Retries "3"' \
    --include="$packages" \
    "$suite" "$root" \
    "deb $mirror/debian $suite main" \
    "deb $mirror/debian $suite-updates main" \
    "deb $mirror/debian-security $suite-security main"
fi

step "configuring the root filesystem"
# mmdebstrap writes its --aptopt options into the root (apt.conf.d/99mmdebstrap): they were for
# the bootstrap only, and Check-Valid-Until "false" would let every clone accept expired
# Release files (trust-apt).
rm -f "$root/etc/apt/apt.conf.d/99mmdebstrap"
printf 'LABEL=rootfs / ext4 errors=remount-ro 0 1\n' >"$root/etc/fstab"
printf 'localhost\n' >"$root/etc/hostname"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
: >"$root/etc/machine-id"
ln -sfn ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*
# The build seed and every clone's seed are NoCloud; ConfigDrive is what XCP-ng may offer too.
mkdir -p "$root/etc/cloud/cloud.cfg.d"
printf 'datasource_list: [ NoCloud, ConfigDrive, None ]\n' \
  >"$root/etc/cloud/cloud.cfg.d/90-datasources.cfg"
# netplan passes network-config v2 through as written (match by name glob included), which
# cloud-init's ENI renderer cannot express; systemd-resolved takes DNS from DHCP.
printf 'system_info:\n  network:\n    renderers: [ netplan, networkd, eni ]\n' \
  >"$root/etc/cloud/cloud.cfg.d/90-network-renderers.cfg"
if ! { test -e "$root/vmlinuz" && test -e "$root/initrd.img"; }; then
  echo "basedisk: the root has no /vmlinuz or /initrd.img (kernel or initramfs missing)" >&2
  exit 1
fi

step "building the EFI system partition"
cat >"$work/grub.cfg" <<'CFG'
set timeout=0
search --no-floppy --label rootfs --set=root
linux /vmlinuz root=LABEL=rootfs ro console=tty0 console=ttyS0,115200n8
initrd /initrd.img
boot
CFG
grub-mkstandalone -O x86_64-efi -o "$work/BOOTX64.EFI" \
  --modules="part_gpt ext2 search search_label linux normal" \
  "boot/grub/grub.cfg=$work/grub.cfg"
rm -f "$work/esp.img"
truncate -s "${esp_mb}M" "$work/esp.img"
mkfs.vfat -n ESP "$work/esp.img" >/dev/null
mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT
mcopy -i "$work/esp.img" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI

# 1 MiB before the ESP, 1 MiB after the root for the backup GPT.
root_mb=$((size_mb - esp_mb - 2))
step "making the ext4 root (${root_mb} MiB) with mkfs.ext4 -d"
rm -f "$work/root.img"
truncate -s "${root_mb}M" "$work/root.img"
mkfs.ext4 -q -F -L rootfs -d "$root" "$work/root.img"

step "assembling the GPT disk (${size_mb} MiB)"
rm -f "$disk"
truncate -s "${size_mb}M" "$disk"
sfdisk --quiet "$disk" <<TABLE
label: gpt
start=1MiB, size=${esp_mb}MiB, type=U, name=ESP
start=$((1 + esp_mb))MiB, size=${root_mb}MiB, type=L, name=rootfs
TABLE
dd if="$work/esp.img" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$work/root.img" of="$disk" bs=1M seek=$((1 + esp_mb)) conv=notrunc,sparse status=none
rm -f "$work/esp.img" "$work/root.img"

step "writing $out (qcow2)"
qemu-img convert -f raw -O qcow2 "$disk" "$out"
rm -f "$disk"
step "done"
