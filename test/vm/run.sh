#!/usr/bin/env bash
# Run one shell command inside a throwaway QEMU guest whose kernel has the
# vsock_loopback transport, so tests can send real AF_VSOCK traffic to CID 1.
#
#   bash test/vm/run.sh 'some shell command'
#
# The guest sees the host's whole filesystem (virtiofs, read-write) and runs
# the command with `sh -c` as root, in the directory run.sh was invoked from.
# Output streams to stdout; the exit status is the command's.
#
# Env:  VM_TIMEOUT  seconds before the guest is killed (exit 124), default 3000
# Exit: the command's status; 124 timeout; 2 missing prerequisites;
#       125 the VM itself failed (console log printed to stderr).
#
# Passed into the guest: PATH HOME CI NO_COLOR VSOCK_*; TERM=dumb, VSOCK_IN_VM=1.
#
# The guest never gets a vsock device: the only vsock transport it has is
# loopback, so nothing inside can reach the host (CID 2) or any other CID.

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT=$(cd "$SCRIPT_DIR/../.." && pwd)
CACHE="$PROJECT/.cache/vm"
INIT="$SCRIPT_DIR/init.sh"
VM_TIMEOUT=${VM_TIMEOUT:-3000}

# Load order matters for insmod (no modprobe/depmod in the initramfs).
MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
	fuse virtiofs vsock vmw_vsock_virtio_transport_common vsock_loopback)
KERNEL_META=linux-image-cloud-amd64

die() {
	echo "vm/run.sh: $*" >&2
	exit 125
}

if [[ $# -ne 1 ]]; then
	echo "usage: bash test/vm/run.sh 'shell command'" >&2
	exit 2
fi
COMMAND=$1
[[ $VM_TIMEOUT =~ ^[0-9]+$ && $VM_TIMEOUT -gt 0 ]] || {
	echo "vm/run.sh: VM_TIMEOUT must be a positive integer" >&2
	exit 2
}

# ---------------------------------------------------------------- prerequisites

# virtiofsd needs root to chroot into / and to serve files as their real
# owners (the guest command runs as root too).
if [[ $EUID -ne 0 ]]; then
	echo "vm/run.sh: must run as root (virtiofsd shares / with the guest)" >&2
	exit 2
fi

can_apt() { [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; }

apt_updated=
apt_update_once() {
	[[ -n $apt_updated ]] && return 0
	apt_updated=1
	echo "vm/run.sh: apt-get update" >&2
	apt-get update -qq >&2
}

find_virtiofsd() {
	local p
	# Debian 12 ships the C virtiofsd with qemu; newer releases the Rust one.
	for p in /usr/lib/qemu/virtiofsd /usr/libexec/virtiofsd; do
		[[ -x $p ]] && { echo "$p"; return 0; }
	done
	return 1
}

busybox_is_static() {
	local bb
	bb=$(command -v busybox) || return 1
	# Dynamic busybox would need its libraries inside the initramfs.
	command -v ldd >/dev/null || return 0
	[[ $(LC_ALL=C ldd "$bb" 2>&1 || true) == *"not a dynamic"* ]]
}

missing_packages() {
	command -v qemu-system-x86_64 >/dev/null || echo qemu-system-x86
	find_virtiofsd >/dev/null || echo qemu-system-common
	command -v cpio >/dev/null || echo cpio
	busybox_is_static || echo busybox-static
}

ensure_packages() {
	local missing
	missing=$(missing_packages | sort -u | tr '\n' ' ')
	[[ -z $missing ]] && return 0
	if can_apt; then
		apt_update_once
		echo "vm/run.sh: installing $missing" >&2
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
		missing=$(missing_packages | sort -u | tr '\n' ' ')
		[[ -z $missing ]] && return 0
	fi
	echo "vm/run.sh: missing Debian packages: $missing" >&2
	echo "  install them as root:  apt-get install --no-install-recommends $missing" >&2
	exit 2
}

# ---------------------------------------------------------------- kernel cache

# Prints the concrete package name, e.g. linux-image-6.1.0-56-cloud-amd64.
resolve_kernel_package() {
	command -v apt-cache >/dev/null || return 1
	apt-cache depends "$KERNEL_META" 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | sed -n 1p
}

# Sets KVER and KDIR ($CACHE/kernel-$KVER with vmlinuz, config, modules/).
ensure_kernel() {
	local pkg dl cached
	pkg=$(resolve_kernel_package || true)
	if [[ -z $pkg ]] && can_apt; then
		apt_update_once
		pkg=$(resolve_kernel_package || true)
	fi
	cached=$(find "$CACHE" -maxdepth 1 -name 'kernel-*' -type d 2>/dev/null | sort -V | tail -n 1)
	if [[ -z $pkg ]]; then
		# No apt metadata (or no apt): an already cached kernel is good enough.
		if [[ -n $cached ]]; then
			KDIR=$cached
			KVER=${KDIR##*/kernel-}
			return 0
		fi
		echo "vm/run.sh: cannot resolve $KERNEL_META with apt-cache and no kernel is cached" >&2
		echo "  as root: apt-get update   (Debian apt sources required), then rerun" >&2
		exit 2
	fi
	KVER=${pkg#linux-image-}
	KDIR="$CACHE/kernel-$KVER"
	[[ -f $KDIR/vmlinuz && -f $KDIR/modules/.complete ]] && return 0

	echo "vm/run.sh: fetching $pkg into $CACHE" >&2
	dl=$(mktemp -d "$CACHE/.dl.XXXXXX")
	TEMP_PATHS+=("$dl")
	local -a aptopts=()
	# As root apt drops to the _apt user, which cannot write our temp dir.
	[[ $EUID -eq 0 ]] && aptopts=(-o APT::Sandbox::User=root)
	if ! (cd "$dl" && apt-get "${aptopts[@]}" download -qq "$pkg" >&2); then
		rm -rf "$dl"
		if [[ -n $cached ]]; then
			echo "vm/run.sh: download failed; using cached ${cached##*/}" >&2
			KDIR=$cached
			KVER=${KDIR##*/kernel-}
			return 0
		fi
		echo "vm/run.sh: could not download $pkg" >&2
		echo "  fetch it manually: apt-get download $pkg && dpkg -x ${pkg}_*.deb <dir>" >&2
		exit 2
	fi
	dpkg -x "$dl"/*.deb "$dl/x"

	# Keep only what the VM needs (the package unpacks to ~100 MB).
	local stage="$dl/kernel" mod src
	mkdir -p "$stage/modules"
	cp "$dl/x/boot/vmlinuz-$KVER" "$stage/vmlinuz"
	cp "$dl/x/boot/config-$KVER" "$stage/config"
	: >"$stage/modules/order"
	for mod in "${MODULES[@]}"; do
		src=$(find "$dl/x/lib/modules/$KVER" \( -name "$mod.ko" -o -name "$mod.ko.*" \) -print -quit)
		[[ -n $src ]] || continue # built in (or not shipped; checked below)
		# busybox insmod cannot read compressed modules.
		case $src in
		*.ko) cp "$src" "$stage/modules/$mod.ko" ;;
		*.ko.xz) xz -dc "$src" >"$stage/modules/$mod.ko" ;;
		*.ko.zst) zstd -qdc "$src" >"$stage/modules/$mod.ko" ;;
		*.ko.gz) gzip -dc "$src" >"$stage/modules/$mod.ko" ;;
		*) die "unsupported module format: $src" ;;
		esac
		echo "$mod" >>"$stage/modules/order"
	done
	if ! grep -qx vsock_loopback "$stage/modules/order" &&
		! grep -q '^CONFIG_VSOCKETS_LOOPBACK=y' "$stage/config"; then
		rm -rf "$dl"
		die "$pkg has no vsock_loopback transport (CONFIG_VSOCKETS_LOOPBACK)"
	fi
	touch "$stage/modules/.complete"
	rm -rf "$KDIR"
	mv "$stage" "$KDIR"
	rm -rf "$dl"
	# Older kernels and their initramfs images are dead weight now.
	find "$CACHE" -maxdepth 1 \( -name 'kernel-*' -o -name 'initramfs-*' \) \
		! -name "kernel-$KVER" ! -name "initramfs-$KVER-*" -exec rm -rf {} +
}

# Sets INITRAMFS; rebuilt when the kernel, init.sh, the module list or this
# recipe changes (the hash covers all of them).
ensure_initramfs() {
	local bb key stage
	bb=$(command -v busybox)
	key=$( {
		echo "recipe 1"
		echo "$KVER"
		cat "$KDIR/modules/order"
		cat "$INIT"
		sha256sum <"$bb"
	} | sha256sum | cut -c1-16)
	INITRAMFS="$CACHE/initramfs-$KVER-$key.cpio"
	[[ -f $INITRAMFS ]] && return 0

	stage=$(mktemp -d "$CACHE/.initramfs.XXXXXX")
	TEMP_PATHS+=("$stage" "$INITRAMFS.tmp")
	mkdir -p "$stage"/{bin,dev,proc,sys,mnt,lib/modules}
	cp "$bb" "$stage/bin/busybox"
	cp "$INIT" "$stage/init"
	chmod 755 "$stage/init" "$stage/bin/busybox"
	cp "$KDIR/modules/order" "$stage/lib/modules/"
	find "$KDIR/modules" -name '*.ko' -exec cp -t "$stage/lib/modules/" {} +
	# Uncompressed: it is small and the kernel unpacks it without a decompressor.
	(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) \
		>"$INITRAMFS.tmp"
	rm -rf "$stage"
	mv "$INITRAMFS.tmp" "$INITRAMFS"
	find "$CACHE" -maxdepth 1 -name "initramfs-*" ! -name "${INITRAMFS##*/}" -delete
}

# ---------------------------------------------------------------- run

# POSIX single-quoting (bash's %q emits $'..', which dash does not parse).
shquote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# Everything started or created below is recorded here so that any exit
# (normal, error, Ctrl-C, timeout) tears it down.
virtiofsd_pid= vm_pid= relay_pid=
TEMP_PATHS=()
cleanup() {
	local status=$? pid
	trap - EXIT INT TERM HUP
	# vm_pid is `timeout`, which forwards the signal to qemu.
	for pid in $vm_pid $virtiofsd_pid $relay_pid; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $vm_pid $virtiofsd_pid $relay_pid; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "${TEMP_PATHS[@]}"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

ensure_packages
mkdir -p "$CACHE"
# Concurrent runs would race building the same cache files.
exec 9>"$CACHE/.lock"
flock 9
# Holding the lock, any leftover staging area is from a killed run.
rm -rf "$CACHE"/.dl.* "$CACHE"/.initramfs.* "$CACHE"/*.tmp
ensure_kernel
ensure_initramfs
# Open the boot files before unlocking: a concurrent run may replace the
# cache (new kernel, edited init.sh) and delete them before qemu reads them.
exec 7<"$KDIR/vmlinuz" 8<"$INITRAMFS"
flock -u 9
exec 9>&-

VIRTIOFSD=$(find_virtiofsd)

# Must live on the shared host filesystem: the guest reads run/ and writes rc
# here (as /mnt$RUN_DIR inside the VM before chroot, $RUN_DIR after).
RUN_DIR=$(mktemp -d /tmp/vsockvm.XXXXXX)
TEMP_PATHS+=("$RUN_DIR")
TOKEN=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

{
	echo "# generated by test/vm/run.sh"
	for name in PATH HOME CI NO_COLOR $(compgen -v VSOCK_ || true); do
		[[ -v $name ]] || continue
		[[ $name == VSOCK_IN_VM ]] && continue
		echo "export $name=$(shquote "${!name}")"
	done
	echo "export TERM=dumb"
	echo "export VSOCK_IN_VM=1"
	echo "cd $(shquote "$PWD") || exit 125"
	echo "unset OLDPWD"
	echo "exec /bin/sh -c $(shquote "$COMMAND")"
} >"$RUN_DIR/run"
# Same isatty() answer inside as the caller gets outside.
if [[ -t 1 ]]; then touch "$RUN_DIR/tty"; fi

# The default namespace sandbox fails in containers; chroot works.
# cache=always lets the guest keep file pages and metadata: with the default,
# every exec re-reads binaries through virtiofsd (measured ~4x slower for
# fork+exec, 31 s vs 6 s for pyenv's python3 shim). The cost is that host-side
# edits made while a VM runs may go unseen by it, which is fine for one
# throwaway command.
if [[ $VIRTIOFSD == */libexec/* ]]; then
	virtiofsd_opts=(--shared-dir=/ --sandbox=chroot --cache=always)
else
	virtiofsd_opts=(-o source=/ -o sandbox=chroot -o cache=always)
fi
"$VIRTIOFSD" --socket-path="$RUN_DIR/virtiofs.sock" "${virtiofsd_opts[@]}" \
	</dev/null >"$RUN_DIR/virtiofsd.log" 2>&1 &
virtiofsd_pid=$!
for _ in $(seq 100); do
	[[ -S $RUN_DIR/virtiofs.sock ]] && break
	kill -0 "$virtiofsd_pid" 2>/dev/null || break
	sleep 0.05
done
[[ -S $RUN_DIR/virtiofs.sock ]] || {
	cat "$RUN_DIR/virtiofsd.log" >&2
	die "virtiofsd did not start"
}

# Forward only the command's part of the console: drop firmware/kernel/init
# chatter before the begin marker and everything from the end marker on (the
# end marker may follow output that lacked a final newline). -u: stream lines
# as they arrive. The raw console is kept for diagnostics.
BEGIN="@@vsockvm-$TOKEN-begin@@"
END="@@vsockvm-$TOKEN-end@@"
mkfifo "$RUN_DIR/console"
sed -u -n -e "w $RUN_DIR/console.log" -e "
	/^$BEGIN\r\?\$/,/$END/ {
		/^$BEGIN\r\?\$/d
		/$END/ { s/$END.*//; /^\$/d }
		p
	}" <"$RUN_DIR/console" &
relay_pid=$!

# TCG, not KVM: nested KVM hangs on the CI hosts. -cpu max: Bun needs AVX2.
# The memfd backend with share=on is what vhost-user-fs requires.
timeout -k 10 "$VM_TIMEOUT" qemu-system-x86_64 \
	-accel tcg -cpu max -smp 2 -m 2G \
	-object memory-backend-memfd,id=mem,size=2G,share=on -numa node,memdev=mem \
	-nic none -display none -monitor none -serial stdio -no-reboot \
	-kernel /dev/fd/7 -initrd /dev/fd/8 \
	-append "console=ttyS0 quiet loglevel=0 panic=-1 vsockvm.dir=$RUN_DIR vsockvm.token=$TOKEN" \
	-chardev socket,id=fs,path="$RUN_DIR/virtiofs.sock" \
	-device vhost-user-fs-pci,chardev=fs,tag=hostroot \
	</dev/null >"$RUN_DIR/console" 2>"$RUN_DIR/qemu.log" &
vm_pid=$!

vm_status=0
wait "$vm_pid" || vm_status=$?
vm_pid=
wait "$relay_pid" || true
relay_pid=

if [[ $vm_status -eq 124 ]]; then
	echo "vm/run.sh: timed out after ${VM_TIMEOUT}s; guest killed" >&2
	exit 124
fi
if [[ ! -f $RUN_DIR/rc ]]; then
	echo "vm/run.sh: the VM exited (status $vm_status) without running the command" >&2
	echo "---- qemu stderr" >&2
	cat "$RUN_DIR/qemu.log" >&2 || true
	echo "---- guest console" >&2
	tr -d '\r' <"$RUN_DIR/console.log" >&2 || true
	echo "---- virtiofsd" >&2
	tail -n 20 "$RUN_DIR/virtiofsd.log" >&2 || true
	exit 125
fi
exit "$(cat "$RUN_DIR/rc")"
