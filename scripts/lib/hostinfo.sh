# Sourced by bench.sh and bench-compare.sh: the machine QEMU runs on, as
# benchreport's --host-cpu prints it in the tables and bench/results.md.
# Sets host_cpu, e.g. "AMD EPYC (2 host CPUs)": the first "model name" of
# /proc/cpuinfo ("unknown" without one) and the count of CPUs.
host_cpu=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^model name[[:space:]]*:[[:space:]]*//')
host_cpu="${host_cpu:-unknown} ($(nproc) host CPUs)"
