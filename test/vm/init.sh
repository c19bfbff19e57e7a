#!/bin/busybox sh
# /init of the throwaway test VM (see run.sh). Runs as PID 1 under busybox.
#
# Contract with run.sh (everything else is discovered at runtime):
#   kernel cmdline  vsockvm.dir=<host temp dir>  vsockvm.token=<random>
#   <dir>/run       POSIX sh script (env, cd, exec the command), run chrooted
#                   into the host root with an empty environment
#   <dir>/tty       present if the command's stdout should be a terminal
#   <dir>/rc        written here: the command's exit status
# Output between the two "@@vsockvm-<token>-begin/end@@" lines is the
# command's; run.sh forwards only that part of the console.

/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The kernel may have started us without usable stdio if /dev/console was
# missing from the initramfs; the console is ttyS0 (console= on the cmdline).
exec </dev/console >/dev/console 2>&1

# Keep kernel messages off the console even if something raises the level.
dmesg -n 1

halt_vm() {
	sync
	poweroff -f
	sleep 2
	reboot -f # qemu runs with -no-reboot, so this exits it too
}

fail() {
	echo "vsockvm-init: FATAL: $*"
	echo "vsockvm-init: last kernel messages:"
	dmesg | tail -n 30
	halt_vm
}

dir= token=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	vsockvm.dir=*) dir=${arg#vsockvm.dir=} ;;
	vsockvm.token=*) token=${arg#vsockvm.token=} ;;
	esac
done
[ -n "$dir" ] && [ -n "$token" ] || fail "vsockvm.dir/vsockvm.token missing from kernel cmdline"

# Module order is fixed at build time (run.sh writes only modules the kernel
# package ships, in dependency order; built-in ones are simply absent).
while read -r mod; do
	[ -n "$mod" ] || continue
	[ -d "/sys/module/$mod" ] && continue
	insmod "/lib/modules/$mod.ko" || fail "insmod $mod failed"
done </lib/modules/order

# Tests rely on CID 1 (VMADDR_CID_LOCAL); without the loopback transport
# every vsock test would fail confusingly, so stop here instead.
if grep -qx vsock_loopback /lib/modules/order; then
	[ -d /sys/module/vsock_loopback ] || fail "vsock_loopback did not load"
fi
[ -c /dev/vsock ] || fail "/dev/vsock missing after loading vsock modules"

mount -t virtiofs hostroot /mnt || fail "cannot mount virtiofs tag hostroot"
[ -f "/mnt$dir/run" ] || fail "/mnt$dir/run not visible through virtiofs"

# The host's /proc, /sys, /dev are meaningless here; give the chroot the
# guest's own (notably /dev/vsock of this kernel). Mounts stay guest-local.
mount -t proc proc /mnt/proc
mount -t sysfs sysfs /mnt/sys
mount -t devtmpfs devtmpfs /mnt/dev
mkdir -p /mnt/dev/pts /mnt/dev/shm
mount -t devpts devpts /mnt/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /mnt/dev/shm

# TCP baselines need 127.0.0.1; the kernel assigns it when lo comes up.
ip link set lo up || fail "cannot bring up lo"
hostname vsockvm

# No CR insertion, so output reaches the host byte for byte.
stty -opost 2>/dev/null

echo "@@vsockvm-$token-begin@@"
if [ -e "/mnt$dir/tty" ]; then
	env -i /bin/busybox chroot /mnt /bin/sh "$dir/run" </dev/null
	rc=$?
else
	# Host stdout is not a terminal: mirror that, so buffering and colour
	# decisions match what the command would do on the host. A FIFO rather
	# than a pipeline, so the relay can outlive the command (see below).
	mkfifo /out
	cat /out &
	relay=$!
	env -i /bin/busybox chroot /mnt /bin/sh "$dir/run" </dev/null >/out 2>&1
	rc=$?
fi
# Background processes the command left behind would keep the relay's input
# open forever (and could write after the end marker); the VM is about to go
# away anyway, so end them now. Kernel threads ignore the signal.
for pid in /proc/[0-9]*; do
	pid=${pid#/proc/}
	[ "$pid" = 1 ] || [ "$pid" = "${relay:-}" ] || kill -KILL "$pid" 2>/dev/null
done
[ -z "${relay:-}" ] || wait "$relay"
# The command's last line may lack a newline; run.sh strips the marker from
# wherever it appears in a line.
echo "@@vsockvm-$token-end@@"

echo "$rc" >"/mnt$dir/rc.tmp" && mv "/mnt$dir/rc.tmp" "/mnt$dir/rc"
halt_vm
