# NAME.runkvm: what a program printed when NAME.initrd was booted in a virtual machine
# (qemu) with the kernel `vmlinuz` from the target's folder.
#
# The machine has no disk, no network and 256 MiB of memory, and three serial ports:
#   ttyS0  the kernel console (kept, and shown when the boot goes wrong)
#   ttyS1  the program's standard output: becomes this target, byte for byte
#   ttyS2  the program's exit status, in decimal on one line
# The initrd's /init must honour that contract: run the program with its stdout on
# /dev/ttyS1 (in raw mode, so "\n" is not turned into "\r\n"), write `$?` to /dev/ttyS2,
# then power the machine off (`poweroff -f`). Chapter 4 of the tutorial has such an init.
# When the program exits non-zero this rule fails with the same status; when no status
# arrives (a kernel panic, an init that never ends) it fails and prints the console.
#
# Acceleration: kvm when /dev/kvm is usable and boots, else TCG (pure emulation, slower
# but available everywhere). RUNKVM_ACCEL=kvm|tcg|auto (default auto) picks one; in auto
# mode a kvm boot that gives no status within RUNKVM_KVM_TRIAL_SECONDS (default 5; a
# working kvm boots in about a second) is abandoned and the machine booted again with
# TCG, because some hosts expose /dev/kvm without being able to run a guest on it.
# RUNKVM_TIMEOUT (default 300 seconds) bounds a whole boot. The acceleration never
# changes the output, so these settings are not dependencies.
initrd="$2.initrd"
redo-ifchange "$initrd" vmlinuz

if ! command -v qemu-system-x86_64 >/dev/null; then
	echo "runkvm: qemu-system-x86_64 is not installed (Debian package qemu-system-x86)" >&2
	exit 1
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/redo-runkvm.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# boot ACCEL SECONDS: one boot; leaves console, out and status in $scratch.
boot() {
	rm -f "$scratch/console" "$scratch/out" "$scratch/status"
	timeout --kill-after=2 "$2" qemu-system-x86_64 \
		-accel "$1" -nodefaults -no-user-config -display none -no-reboot \
		-m 256 -kernel vmlinuz -initrd "$initrd" \
		-append "console=ttyS0 quiet panic=-1" \
		-serial "file:$scratch/console" -serial "file:$scratch/out" -serial "file:$scratch/status" \
		-monitor none </dev/null >"$scratch/qemu.log" 2>&1 || true
	[ -s "$scratch/status" ]
}

accel=${RUNKVM_ACCEL:-auto}
trial=${RUNKVM_KVM_TRIAL_SECONDS:-5}
limit=${RUNKVM_TIMEOUT:-300}
case $accel in
kvm) boot kvm "$limit" || true ;;
tcg) boot tcg "$limit" || true ;;
auto)
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		if boot kvm "$trial"; then
			accel=kvm
		else
			echo "runkvm: kvm gave no result within ${trial}s here; booting with TCG" >&2
			accel=tcg
			boot tcg "$limit" || true
		fi
	else
		accel=tcg
		boot tcg "$limit" || true
	fi
	;;
*)
	echo "runkvm: RUNKVM_ACCEL must be kvm, tcg or auto, not \"$accel\"" >&2
	exit 2
	;;
esac

if [ ! -s "$scratch/status" ]; then
	echo "runkvm: $initrd gave no exit status on ttyS2 (accel $accel); the console said:" >&2
	tail -n 30 "$scratch/console" "$scratch/qemu.log" >&2 2>/dev/null || true
	exit 1
fi
status=$(tr -d '\r\n ' < "$scratch/status")
case $status in
'' | *[!0-9]*)
	echo "runkvm: $initrd wrote \"$status\" on ttyS2, not an exit status" >&2
	exit 1
	;;
esac
if [ "$status" -ne 0 ]; then
	echo "runkvm: the program in $initrd exited with status $status" >&2
	tail -n 30 "$scratch/console" >&2
	exit "$status"
fi
cat "$scratch/out" > "$3"
