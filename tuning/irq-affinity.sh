#!/usr/bin/env bash
# Pins every IRQ of one NIC to a CPU list, so the cores that run Verge's shards (systemd CPUAffinity=)
# are not interrupted by packet processing. Not persistent: a reboot, driver reload or link reset may
# restore the driver's placement, so run it at boot (e.g. from a oneshot unit before verge.service).
#
# irqbalance rewrites IRQ affinity every few seconds: stop it (systemctl disable --now irqbalance) or
# ban these IRQs (IRQBALANCE_ARGS="--banirq=N ..." in /etc/default/irqbalance, or on irqbalance >= 1.8
# keep it off the shard cores with IRQBALANCE_BANNED_CPULIST=<shard cores>).
set -euo pipefail

prog=${0##*/}

usage() {
    cat <<EOF
Usage: $prog [--dry-run] NIC CPULIST

Writes CPULIST to /proc/irq/N/smp_affinity_list for every IRQ of NIC.
  NIC      network interface, e.g. eth0 (IRQs from /sys/class/net/NIC/device/msi_irqs, else
           /proc/interrupts entries naming NIC)
  CPULIST  CPUs that should take the NIC's interrupts, e.g. 0-1 or 0,2,4-5; give Verge the others
  --dry-run  print what would be written, change nothing (no root needed)

Example: $prog eth0 0-1     then CPUAffinity=2-15 in verge.service
Stop irqbalance first, or ban these IRQs in it, or it will undo this.
EOF
}

dry_run=0
args=()
for a in "$@"; do
    case $a in
    --dry-run | -n) dry_run=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "$prog: unknown option $a" >&2; usage >&2; exit 2 ;;
    *) args+=("$a") ;;
    esac
done
if ((${#args[@]} != 2)); then
    usage >&2
    exit 2
fi
nic=${args[0]}
cpus=${args[1]}

if [[ ! $cpus =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]]; then
    echo "$prog: CPULIST '$cpus' is not a list like 0-1 or 0,2,4-5" >&2
    exit 2
fi
if [[ ! -e /sys/class/net/$nic ]]; then
    echo "$prog: no network interface '$nic' (have: $(cd /sys/class/net && echo *))" >&2
    exit 2
fi
if ((!dry_run && EUID != 0)); then
    echo "$prog: must run as root to write /proc/irq (or use --dry-run)" >&2
    exit 2
fi

# Every CPU in the list must be online, or the kernel rejects the write.
online=/sys/devices/system/cpu/online
if [[ -r $online ]]; then
    expand() { # "0-2,5" -> "0 1 2 5"
        local part out=() i
        IFS=, read -r -a parts <<<"$1"
        for part in "${parts[@]}"; do
            if [[ $part == *-* ]]; then
                for ((i = ${part%-*}; i <= ${part#*-}; i++)); do out+=("$i"); done
            else
                out+=("$part")
            fi
        done
        echo "${out[*]}"
    }
    on=" $(expand "$(<"$online")") "
    for c in $(expand "$cpus"); do
        if [[ $on != *" $c "* ]]; then
            echo "$prog: CPU $c is not online (online: $(<"$online"))" >&2
            exit 2
        fi
    done
fi

# The NIC's IRQs: MSI/MSI-X vectors of its PCI function (for virtio-net the PCI device is the parent
# of the virtio device), else the legacy INTx line, else /proc/interrupts lines naming the NIC.
irqs=()
dev=/sys/class/net/$nic/device
msi=$dev/msi_irqs
if [[ ! -d $msi && $(readlink -f "$dev/subsystem" 2>/dev/null) == */virtio ]]; then
    msi=$dev/../msi_irqs # never a PCI NIC's parent: that is a bridge with IRQs of its own
fi
if [[ -d $msi ]]; then
    for f in "$msi"/*; do [[ -e $f ]] && irqs+=("${f##*/}"); done
    if ((${#irqs[@]})); then mapfile -t irqs < <(printf '%s\n' "${irqs[@]}" | sort -n); fi
fi
if ((${#irqs[@]} == 0)) && [[ -r $dev/irq ]]; then
    n=$(<"$dev/irq")
    [[ $n =~ ^[0-9]+$ && $n != 0 ]] && irqs+=("$n")
fi
if ((${#irqs[@]} == 0)); then
    while IFS= read -r n; do irqs+=("$n"); done < <(
        awk -v nic="$nic" '$1 ~ /^[0-9]+:$/ {
            for (i = 2; i <= NF; i++)
                if ($i == nic || index($i, nic "-") == 1 || index($i, nic "@") == 1) { sub(":", "", $1); print $1; break }
        }' /proc/interrupts
    )
fi
if ((${#irqs[@]} == 0)); then
    echo "$prog: $nic has no IRQs (virtual or software interface, e.g. lo, a bridge or a VLAN:" \
        "pin the IRQs of the physical NIC underneath); nothing to do"
    exit 0
fi

if pgrep -x irqbalance >/dev/null 2>&1; then
    echo "$prog: warning: irqbalance is running and will move these IRQs again:" \
        "systemctl disable --now irqbalance, or ban IRQs ${irqs[*]} in it" >&2
fi

failed=0
for n in "${irqs[@]}"; do
    f=/proc/irq/$n/smp_affinity_list
    name=$(awk -v n="$n:" '$1 == n { print $NF; exit }' /proc/interrupts)
    if [[ ! -e $f ]]; then
        echo "IRQ $n${name:+ ($name)}: $f missing, skipped" >&2
        continue
    fi
    cur=$(cat "$f" 2>/dev/null || echo '?')
    if ((dry_run)); then
        echo "would write $cpus to $f (now $cur)${name:+  # $name}"
    elif printf '%s\n' "$cpus" >"$f" 2>/dev/null; then
        echo "IRQ $n${name:+ ($name)}: $cur -> $(<"$f")"
    else
        # Kernel-managed IRQs (some multi-queue drivers) refuse user affinity with EIO.
        echo "IRQ $n${name:+ ($name)}: write refused (kernel-managed affinity?), still $cur" >&2
        failed=1
    fi
done
exit "$failed"
