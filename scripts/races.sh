#!/usr/bin/env bash
# make races: the race gallery. For each of the five seed races, boot its
# torture suite with the fix and again with its negative control (QEMU TCG,
# -smp 4), and print one table: seed, mechanism, original system and date,
# race-window hits counted in the fixed run, result with the fix, result with
# the control, time taken. Where tracing applies (seed 002) the fixed run also
# records a ktrace and `swift run ktrace` draws the caught window as an SVG.
#
#   bash scripts/races.sh [--seeds 000,002] [--kernel build/kernel.elf] [--out build/races] [--no-trace]
set -u
cd "$(dirname "$0")/.."
seeds="000,001,002,003,004" kernel=build/kernel.elf out=build/races trace=1
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift 2;;
    --kernel) kernel="$2"; shift 2;;
    --out) out="$2"; shift 2;;
    --no-trace) trace=0; shift;;
    -h|--help) sed -n '2,10p' "$0"; exit 0;;
    *) echo "races.sh: unknown argument '$1' (try --help)" >&2; exit 2;;
  esac
done
[ -f "$kernel" ] || { echo "races.sh: no kernel at $kernel (run make first)" >&2; exit 2; }
mkdir -p "$out"

# seed | mechanism | origin | suite | fix options | control option | hits pattern (sed, from the fixed log)
# | fixed-run success pattern | control failure pattern
table() {
cat <<'EOF'
000|bsd4 scheduler: remote uschedcp is a hint|DragonFly, May 2008|bsd4-torture||bug.bsd4_remote_assert=1|s/.*to the moved lwp itself \([0-9]*\) times.*/\1/p|End of test: SUCCESS|panic: assertion: dd->uschedcp != lp
001|binding: BOUND checked at the switch|NetBSD (tech-kern post)|bind-torture||bug.migrate_ignores_bound=1|s/.*bound with a target at a switch, kept \([0-9]*\).*/\1/p|End of test: SUCCESS|passive reference transferred from CPU
002|rendezvous vs critical_exit's window|FreeBSD r222254, May 2011|rendezvous-preempt|ktrace=1|bug.rendezvous_plain_critical=1|s/.* \([0-9]*\) actions ran while CPU A was inside critical_exit's window.*/\1/p|End of test: SUCCESS|panic: C1: context switch in interrupt context
003|thread hand-off: fence after the RUNNING wait|DragonFly 562273eaa0, Sep 2010|migrate||bug.handoff_early_clear=1|s/.*hand-offs, \([0-9]*\) with the puller spinning on RUNNING.*/\1/p|End of test: SUCCESS|FAIL: migrate: D6
004|panic: stop the other CPUs with NMIs|FreeBSD r228424, Dec 2011|panic-lockheld||bug.panic_stop_ipi=1|-|stop: NMI to CPUs|timeout stopping cpus
EOF
}

boot() {   # boot LOG CMDLINE -> seconds taken
  local log="$1" cmdline="$2" t0 t1
  t0=$(date +%s.%N)
  bash scripts/run-qemu.sh --smp 4 --accel tcg --timeout 300 --cmdline "$cmdline" "$kernel" < /dev/null 2>&1 | tr -d '\r' > "$log"
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }'
}

rows=()
while IFS='|' read -r seed mech origin suite fixopt control hits okpat failpat; do
  case ",$seeds," in *",$seed,"*) ;; *) continue;; esac
  echo "races: seed $seed: $suite with the fix ..." >&2
  tfix=$(boot "$out/seed-$seed-fix.log" "run=$suite $fixopt")
  echo "races: seed $seed: $suite with $control ..." >&2
  tctl=$(boot "$out/seed-$seed-control.log" "run=$suite $control")
  n=$(sed -n "$hits" "$out/seed-$seed-fix.log" | head -1)
  fixres="FAILURE"; grep -q "$okpat" "$out/seed-$seed-fix.log" && fixres="SUCCESS"
  if [ "$seed" = 004 ]; then
    # Hits: CPUs the NMI caught running (each saved a frame), the lock holder
    # among them spinning with interrupts off. The fix fails if any did not stop.
    n=$(grep -c '^CPU [0-9]*: stopped at rip' "$out/seed-$seed-fix.log")
    if grep -q "timeout stopping cpus" "$out/seed-$seed-fix.log"; then fixres="FAILURE (a CPU did not stop)"
    elif [ "$fixres" = SUCCESS ]; then fixres="SUCCESS (every CPU stopped)"; fi
  fi
  ctlres="did not fail"; grep -q "$failpat" "$out/seed-$seed-control.log" && ctlres="FAILURE: $(grep -m1 "$failpat" "$out/seed-$seed-control.log" | sed 's/ (CPU [0-9]*)$//' | cut -c1-96)"
  picture="-"
  if [ "$trace" = 1 ] && [ "$seed" = 002 ] && grep -q '^ktrace: begin' "$out/seed-$seed-fix.log"; then
    if swift run ktrace --svg "$out/seed-002-window.svg" "$out/seed-$seed-fix.log" > "$out/seed-002-window.json" 2> "$out/ktrace.err" < /dev/null; then
      picture="$out/seed-002-window.svg"
    fi
  fi
  rows+=("| $seed | $mech | $origin | \`$suite\` | ${n:-0} | $fixres | \`$control\`: $ctlres | ${tfix} s + ${tctl} s | $picture |")
done < <(table)

{
  echo "| seed | mechanism | original system and date | suite | race-window hits | with the fix | with the control | time | trace |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  for r in "${rows[@]}"; do echo "$r"; done
} | tee "$out/races.md"
echo "races: logs, the table (races.md) and the trace picture are in $out/" >&2
