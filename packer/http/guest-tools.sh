#!/bin/sh
# Install the XCP-ng guest agent into the system being installed, from the guest-tools ISO the
# Packer plugin attaches as a CD (tools_iso_name), so that the installed system's first boot
# reports its IP through XAPI. Without it the plugin knows only the installer's address (from
# its HTTP request), and the installed system may get another DHCP lease (plugin issue #61).
#
# Runs in the installer, from its post-install hook, with the target root as $1:
#   d-i preseed/late_command      sh guest-tools.sh /target
#   subiquity late-commands       sh guest-tools.sh /target
#   anaconda %post --nochroot     sh guest-tools.sh /mnt/sysroot
# POSIX sh (busybox ash in d-i). It never fails the install: without the CD it says so and
# packer/scripts/40-xen-guest-tools.sh installs the agent after the first boot instead.
set -u

TARGET=${1:-/target}
say() { echo "guest-tools.sh: $*"; }

mnt=${TMPDIR:-/tmp}/xcpng-guest-tools
mkdir -p "$mnt"
found=""
# CD drives of an HVM guest are emulated IDE (sr*); tests point this at stand-ins
DEVICES=${GUEST_TOOLS_DEVICES:-/dev/sr0 /dev/sr1 /dev/sr2 /dev/sr3 /dev/xvdd /dev/xvde}
for dev in $DEVICES; do
  [ -e "$dev" ] || continue
  if mount -t iso9660 -o ro "$dev" "$mnt" 2>/dev/null; then
    if [ -f "$mnt/Linux/install.sh" ]; then
      found=$dev
      break
    fi
    umount "$mnt"
  fi
done
if [ -z "$found" ]; then
  say "no guest-tools CD found; the agent is installed after the first boot instead"
  exit 0
fi

first() { # the first existing file a glob names
  for f in "$@"; do
    if [ -f "$f" ]; then
      echo "$f"
      return
    fi
  done
}

in_target() {
  if command -v in-target >/dev/null 2>&1 && [ "$TARGET" = /target ]; then
    in-target "$@" # d-i: mounts /proc etc. and keeps services from starting
  else
    chroot "$TARGET" "$@"
  fi
}

rc=0
if [ -d "$TARGET/var/lib/dpkg" ]; then
  pkg=$(first "$mnt"/Linux/xe-guest-utilities_*_amd64.deb)
  if [ -n "$pkg" ]; then
    cp "$pkg" "$TARGET/tmp/xe-guest-utilities.deb"
    in_target dpkg -i /tmp/xe-guest-utilities.deb || rc=$?
    rm -f "$TARGET/tmp/xe-guest-utilities.deb"
  else
    rc=1
  fi
elif [ -d "$TARGET/var/lib/rpm" ] || [ -d "$TARGET/usr/lib/sysimage/rpm" ]; then
  pkg=$(first "$mnt"/Linux/xe-guest-utilities-[0-9]*.x86_64.rpm)
  if [ -n "$pkg" ]; then
    cp "$pkg" "$TARGET/tmp/xe-guest-utilities.rpm"
    in_target rpm -U --replacepkgs /tmp/xe-guest-utilities.rpm || rc=$?
    in_target systemctl enable xe-linux-distribution.service || rc=$?
    rm -f "$TARGET/tmp/xe-guest-utilities.rpm"
  else
    rc=1
  fi
else
  rc=1
fi
umount "$mnt"
if [ "$rc" -ne 0 ]; then
  say "could not install the agent from $found (status $rc); 40-xen-guest-tools.sh will"
else
  say "xe-guest-utilities installed from $found; the first boot reports the VM's IP"
fi
exit 0
