#!/bin/bash
# Build a Debian base disk that boots under BIOS and UEFI alike, from an mmdebstrap root, without
# mounts or loop devices.
#
# Usage: basedisk.sh OUT.qcow2 SIZE_MB WORKDIR SUITE MIRROR PACKAGES
#
# Layout, as Debian's own cloud images do it: GPT with
#   partition 3 (first on the disk, 1 MiB) = BIOS boot partition holding GRUB's i386-pc core.img,
#     loaded by GRUB's boot.img in the protective MBR (SeaBIOS, XCP-ng's and CloudStack's default);
#   partition 1 = ESP (FAT, EFI/BOOT/BOOTX64.EFI from grub-mkstandalone) for UEFI (OVMF);
#   partition 2 = ext4 labelled "rootfs" made with mkfs.ext4 -d, last, so growpart can fill a
#     larger disk.
# Both GRUBs carry the same small configuration: find the root by label, load /vmlinuz and
# /initrd.img (links Debian keeps across kernel upgrades). Why by hand: grub-install and
# grub-bios-setup need a real block device, and losetup -P makes no partition nodes here (see
# machine-facts.md), so this script does what grub-bios-setup does for a BIOS boot partition:
# boot.img's code into the MBR (the partition table kept), told the core's first sector, and
# core.img into the partition, its blocklist told where the rest of it starts. No password and no
# SSH key are baked in: the seed of each boot brings its own.
set -euo pipefail

out=$1 size_mb=$2 work=$3 suite=$4 mirror=$5 packages=$6
esp_mb=64
bios_mb=1
grub_pc=/usr/lib/grub/i386-pc
BIOS_BOOT_TYPE=21686148-6449-6E6F-744E-656564454649
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

step "building the boot loaders (GRUB for UEFI and for BIOS)"
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
# BIOS: the configuration is embedded in core.img and read by GRUB's rescue parser, which needs no
# `normal` module (and no `set timeout`).
grep -v '^set timeout' "$work/grub.cfg" >"$work/grub-bios.cfg"
grub-mkimage -O i386-pc -o "$work/core.img" -c "$work/grub-bios.cfg" -p /boot/grub \
  biosdisk part_gpt ext2 search search_label linux boot
core_sectors=$((($(stat -c %s "$work/core.img") + 511) / 512))
if ((core_sectors > bios_mb * 2048)); then
  echo "basedisk: core.img needs $core_sectors sectors, the BIOS boot partition holds $((bios_mb * 2048))" >&2
  exit 1
fi

# 1 MiB before the BIOS boot partition, 1 MiB after the root for the backup GPT.
esp_start=$((1 + bios_mb))
root_start=$((esp_start + esp_mb))
root_mb=$((size_mb - root_start - 1))
step "assembling the GPT disk (${size_mb} MiB)"
rm -f "$disk"
truncate -s "${size_mb}M" "$disk"
sfdisk --quiet "$disk" <<TABLE
label: gpt
start=${esp_start}MiB, size=${esp_mb}MiB, type=U, name=ESP
start=${root_start}MiB, size=${root_mb}MiB, type=L, name=rootfs
start=1MiB, size=${bios_mb}MiB, type=$BIOS_BOOT_TYPE, name=BIOS
TABLE
dd if="$work/esp.img" of="$disk" bs=1M seek="$esp_start" conv=notrunc,sparse status=none
rm -f "$work/esp.img"

# Made in place, at the root partition's offset: no 8 GiB image to copy into the disk after.
step "making the ext4 root (${root_mb} MiB) with mkfs.ext4 -d"
mkfs.ext4 -q -F -L rootfs -E offset=$((root_start * 1024 * 1024)) -d "$root" "$disk" "${root_mb}M"

# What grub-bios-setup does for a BIOS boot partition (grub-core's boot/i386/pc/boot.S and
# diskboot.S, util/setup.c): little-endian 64-bit sector numbers patched in place.
le64() { local v=$1 i; for i in 0 1 2 3 4 5 6 7; do printf "%b" "\\x$(printf %02x $(((v >> (8 * i)) & 255)))"; done; }
poke() { dd of="$disk" bs=1 seek="$1" conv=notrunc status=none; }
core_lba=2048 # the BIOS boot partition's first sector (1 MiB)
dd if="$work/core.img" of="$disk" bs=512 seek="$core_lba" conv=notrunc status=none
# diskboot.img (core.img's first sector) loads the rest from the blocklist at its end
# (start: 8 bytes at 500; length and segment, which grub-mkimage already wrote, follow).
le64 $((core_lba + 1)) | poke $((core_lba * 512 + 500))
# boot.img's code into the MBR: its first 440 bytes; the disk signature, the protective MBR
# partition entry and 0x55AA stay as sfdisk wrote them.
dd if="$grub_pc/boot.img" of="$disk" bs=440 count=1 conv=notrunc status=none
le64 "$core_lba" | poke $((0x5c)) # GRUB_BOOT_MACHINE_KERNEL_SECTOR
printf '\x90\x90' | poke $((0x66)) # a hard disk: no check of the drive the BIOS passed
rm -f "$work/core.img"

step "writing $out (qcow2)"
qemu-img convert -f raw -O qcow2 "$disk" "$out"
rm -f "$disk"
step "done"
