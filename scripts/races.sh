#!/usr/bin/env bash
# make races: the race gallery. For each of the five seed races, boot its
# torture suite with the fix and again with its negative control (QEMU TCG,
# -smp 4), and print one table: seed, mechanism, original system and date,
# race-window hits counted in the fixed run, result with the fix, result with
# the control, time taken. Where tracing applies (seed 002) the fixed run also
# records a ktrace and `swift run ktrace` draws the caught window as an SVG.
#
#   bash scripts/races.sh [--seeds 000,002] [--kernel build/kernel.elf] [--out build/races]
#                         [--no-trace] [--update-readme]
#                         [--fix-options 'ARGS'] [--control-options 'ARGS']
#
# A row is right when
#   with the fix:     QEMU exit status 1, no `FAIL:` line, the suite's
#                     `End of test: SUCCESS`, race-window hits > 0 (seed 004's
#                     suite panics on purpose: status 5, every other CPU stopped
#                     by the NMI, no `timeout stopping cpus`, no `FAIL:` line,
#                     and its hits are the `window-hit:` lines: a CPU the NMI
#                     caught with interrupts off, holding a spinlock, read from
#                     its saved RFLAGS and its held-lock count);
#   with the control: the expected failure: the control's QEMU status (3 or 5)
#                     and its line (the named panic or FAIL line).
# Exit status: 0 when every row is right; 1 when any row is wrong (the README
# is then left as it was); 2 on bad usage or a missing kernel.
# --update-readme rewrites the block between `<!-- races:begin -->` and
# `<!-- races:end -->` in README.md with this run's table (make races passes it;
# nothing else should). --fix-options adds kernel options to every fixed run and
# --control-options replaces every control's option: both exist to check this
# script itself (e.g. --control-options tick=1, a control that does nothing,
# must make it exit 1).
set -u
cd "$(dirname "$0")/.."
seeds="000,001,002,003,004" kernel=build/kernel.elf out=build/races trace=1 readme=0
fixextra="" controlover=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift 2;;
    --kernel) kernel="$2"; shift 2;;
    --out) out="$2"; shift 2;;
    --no-trace) trace=0; shift;;
    --update-readme) readme=1; shift;;
    --fix-options) fixextra="$2"; shift 2;;
    --control-options) controlover="$2"; shift 2;;
    -h|--help) sed -n '2,30p' "$0"; exit 0;;
    *) echo "races.sh: unknown argument '$1' (try --help)" >&2; exit 2;;
  esac
done
[ -f "$kernel" ] || { echo "races.sh: no kernel at $kernel (run make first)" >&2; exit 2; }
if [ "$readme" = 1 ] && { [ "$seeds" != "000,001,002,003,004" ] || [ -n "$fixextra$controlover" ]; }; then
  echo "races.sh: --update-readme takes every seed as it is (no --seeds, --fix-options, --control-options)" >&2; exit 2
fi
mkdir -p "$out"
smp=4

# seed | mechanism | origin | suite | fix options | control option | hits pattern
# (sed, from the fixed log; "-": seed 004's window-hit lines) | QEMU status with the fix
# | QEMU status with the control | control failure pattern (grep)
table() {
cat <<'EOF'
000|bsd4 scheduler: remote uschedcp is a hint|DragonFly, May 2008|bsd4-torture||bug.bsd4_remote_assert=1|s/^bsd4-torture: window hits natural \([0-9]*\), held \([0-9]*\).*/\1 natural + \2 held/p|1|5|panic: assertion: dd->uschedcp != lp
001|binding: BOUND checked at the switch|NetBSD (tech-kern post)|bind-torture||bug.migrate_ignores_bound=1|s/.*bound with a target at a switch, kept \([0-9]*\).*/\1/p|1|5|passive reference transferred from CPU
002|rendezvous vs critical_exit's window|FreeBSD r222254, May 2011|rendezvous-preempt|ktrace=1|bug.rendezvous_no_critical=1|s/.* \([0-9]*\) actions ran while CPU A was inside critical_exit's window.*/\1/p|1|5|panic: C1: context switch in interrupt context
003|thread hand-off: fence after the RUNNING wait|DragonFly 562273eaa0, Sep 2010|migrate||bug.handoff_early_clear=1|s/.*hand-offs, \([0-9]*\) with the puller spinning on RUNNING.*/\1/p|1|3|FAIL: migrate: D6
004|panic: stop the other CPUs with NMIs|FreeBSD r228424, Dec 2011|panic-lockheld||bug.panic_stop_ipi=1|-|5|5|timeout stopping cpus
EOF
}

# boot LOG CMDLINE: boots the kernel, writes the serial log (carriage returns
# removed) and sets `secs` (wall-clock seconds) and `qstatus` (QEMU's own exit
# status as run-qemu.sh saw it: 1 pass, 3 fail, 5 panic, 0 no result, "timeout").
boot() {
  local log="$1" cmdline="$2" t0 t1 rc
  t0=$(date +%s.%N)
  bash scripts/run-qemu.sh --smp "$smp" --accel tcg --timeout 300 --cmdline "$cmdline" "$kernel" < /dev/null 2>&1 \
    | tr -d '\r' > "$log"
  rc=${PIPESTATUS[0]}
  t1=$(date +%s.%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  case "$rc" in
    0) qstatus=1;;
    1) qstatus=$(sed -n 's/^run-qemu.sh: the kernel reported failure (code \([0-9]*\)).*/\1/p' "$log" | tail -1)
       if [ -n "$qstatus" ]; then qstatus=$((qstatus * 2 + 1)); else qstatus="?"; fi;;
    2) qstatus=$(sed -n 's/^run-qemu.sh: QEMU failed with status \([0-9]*\).*/\1/p' "$log" | tail -1)
       qstatus=${qstatus:-0};;
    124) qstatus=timeout;;
    *) qstatus="run-qemu.sh $rc";;
  esac
}

rows=() wrong=0
while IFS='|' read -r seed mech origin suite fixopt control hits fixstatus ctlstatus failpat; do
  case ",$seeds," in *",$seed,"*) ;; *) continue;; esac
  [ -n "$controlover" ] && control="$controlover"
  fixlog="$out/seed-$seed-fix.log" ctllog="$out/seed-$seed-control.log"

  echo "races: seed $seed: $suite with the fix ..." >&2
  boot "$fixlog" "$(echo run=$suite $fixopt $fixextra)"
  tfix=$secs fixq=$qstatus
  echo "races: seed $seed: $suite with $control ..." >&2
  boot "$ctllog" "run=$suite $control"
  tctl=$secs ctlq=$qstatus

  # With the fix. Every reason it is not right goes into the cell.
  nfail=$(grep -c '^FAIL:' "$fixlog")
  why=()
  [ "$fixq" = "$fixstatus" ] || why+=("QEMU status $fixq, not $fixstatus")
  [ "$nfail" = 0 ] || why+=("$nfail FAIL lines")
  if [ "$seed" = 004 ]; then
    # Hits: CPUs the NMI caught spinning with interrupts off (IF clear in the
    # frame it saved) while holding a spinlock, which no maskable IPI could
    # have stopped: the suite's `window-hit:` lines. Right only if every other
    # CPU stopped and saved a frame. Only the CPU that owns the suite's lock
    # counts (lock-owner= names it): a stopped CPU holding some other lock
    # would be the set-up, not the seed's window.
    n=$(grep -cE '^window-hit: panic-lockheld: cpu=([0-9]+) .*if=0 spinlocks=[1-9][0-9]* lock-owner=\1$' "$fixlog")
    stopped=$(grep -c '^CPU [0-9]*: stopped at rip' "$fixlog")
    grep -q '^timeout stopping cpus' "$fixlog" && why+=("a CPU did not stop")
    grep -q "^stop: NMI to CPUs .*; all $((smp - 1)) stopped" "$fixlog" || why+=("no NMI stop of all $((smp - 1)) CPUs")
    [ "$stopped" = $((smp - 1)) ] || why+=("$stopped stopped CPUs saved a frame, not $((smp - 1))")
    [ "$n" -gt 0 ] || why+=("race window not hit (no CPU stopped with interrupts off holding a lock)")
    good="SUCCESS (every CPU stopped)"
  else
    n=$(sed -n "$hits" "$fixlog" | head -1)
    grep -q '^End of test: SUCCESS' "$fixlog" || why+=("no End of test: SUCCESS")
    # Seed 000 gives "N natural + M held": the row's hits are their sum.
    total=$(echo "${n:-0}" | tr -c '0-9\n' ' ' | awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; print s }')
    [ "${total:-0}" -gt 0 ] 2>/dev/null || why+=("race window not hit")
    good="SUCCESS"
  fi
  if [ ${#why[@]} = 0 ]; then fixres="$good"
  else fixres="WRONG: $(IFS=';'; echo "${why[*]}" | sed 's/;/; /g')"; wrong=1; fi

  # With the control: the expected status and the expected line.
  line=$(grep -m1 -- "$failpat" "$ctllog" | sed 's/ (CPU [0-9]*)$//' | cut -c1-96)
  why=()
  if [ "$ctlq" = 1 ]; then why+=("did not fail (QEMU status 1)")
  elif [ "$ctlq" != "$ctlstatus" ]; then why+=("QEMU status $ctlq, not $ctlstatus"); fi
  [ -n "$line" ] || why+=("no '$failpat' line")
  if [ ${#why[@]} = 0 ]; then ctlres="FAILURE: $line"
  else ctlres="WRONG: $(IFS=';'; echo "${why[*]}" | sed 's/;/; /g')"; wrong=1; fi

  picture="-"
  if [ "$trace" = 1 ] && [ "$seed" = 002 ] && grep -q '^ktrace: begin' "$fixlog"; then
    if swift run ktrace --hit --svg "$out/seed-002-window.svg" "$fixlog" > "$out/seed-002-window.json" 2> "$out/ktrace.err" < /dev/null; then
      picture="\`seed-002-window.svg\`"
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

if [ "$wrong" != 0 ]; then
  echo "races: FAILED: a row above is WRONG (logs in $out/)" >&2
  [ "$readme" = 1 ] && echo "races: README.md left as it was" >&2
  exit 1
fi

if [ "$readme" = 1 ]; then
  # The README's gallery is this run's table, never edited by hand.
  source scripts/lib/hostinfo.sh
  commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  [ -n "$(git status --porcelain --untracked-files=no -- . ':(exclude)README.md' 2>/dev/null)" ] && commit="$commit with local changes"
  qemu=$(qemu-system-x86_64 --version | head -1 | sed 's/^QEMU emulator version /QEMU /')
  block="$out/readme-block.md"
  {
    echo "<!-- races:begin: written by scripts/races.sh --update-readme (make races); do not edit by hand -->"
    cat "$out/races.md"
    echo
    echo "The run: \`make races\` on $(date -u '+%Y-%m-%d %H:%M') UTC, commit $commit, $qemu, TCG \`-smp $smp\`, host CPU $host_cpu."
    echo
    echo "Seed 003's suite in this run (\`run=migrate\`), with the fix:"
    echo
    echo '```'
    sed -n '/^== suite migrate/,/^SUMMARY/p' "$out/seed-003-fix.log"
    echo '```'
    echo
    echo "and with its control (\`run=migrate bug.handoff_early_clear=1\`):"
    echo
    echo '```'
    sed -n '/^== suite migrate/,/^SUMMARY/p' "$out/seed-003-control.log"
    echo '```'
    echo "<!-- races:end -->"
  } > "$block"
  grep -q '^<!-- races:begin' README.md && grep -q '^<!-- races:end -->' README.md \
    || { echo "races: README.md has no races:begin/races:end block" >&2; exit 1; }
  awk -v blockfile="$block" '
    /^<!-- races:begin/ { while ((getline l < blockfile) > 0) print l; skip = 1; next }
    /^<!-- races:end -->/ { skip = 0; next }
    !skip { print }' README.md > "$out/README.md.new" && cat "$out/README.md.new" > README.md && rm -f "$out/README.md.new"
  echo "races: README.md's gallery block rewritten from this run" >&2
fi
