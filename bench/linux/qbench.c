/*
 * qbench: the Linux side of Quartet's benchmark comparison (docs/benchmarks.md).
 *
 * scripts/bench-linux.sh builds it with `gcc -O2 -static -pthread` and runs it as
 * the workload of a minimal initramfs under the same QEMU, accelerator, virtual
 * CPU and -smp as Quartet's run=bench. It prints, on stdout (the serial console):
 *
 *   BENCHENV: system=linux smp=<online CPUs> tsc_mhz=<estimate> kernel=<uname -r> cpu=<model name>
 *   BENCH: id=<id> unit=cycles median=<m> p99=<p> n=<samples> label=<text>   (one per measurement)
 *   SKIP: <id>: <reason>                                                      (instead, when it cannot run)
 *   End of test: SUCCESS
 *
 * Samples are TSC cycles. Every measurement is time-boxed (--ms, default 300 ms,
 * or --samples, default 20,000 samples, whichever comes first). Operations far
 * shorter than a TSC read under TCG (hundreds of cycles there) are timed in
 * batches of BATCH and a sample is the batch's cost per operation.
 *
 *   qbench [--ms N] [--samples N] [--poweroff]
 *
 * --poweroff powers the machine off at the end (reboot(RB_POWER_OFF)); it is an
 * option, not the default, so that running qbench by hand as root on a real
 * machine measures and exits instead of switching that machine off.
 *
 * Any failing system call is fatal: qbench prints why on stderr and exits 1,
 * without the success line, so the run counts as not completed.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

enum { BATCH = 100 };          /* operations per sample for the short operations */
enum { WARMUP = 20 };          /* untimed rounds before each measurement */
enum { MAX_CPUS = CPU_SETSIZE };

/* ---- failure ---------------------------------------------------------------- */

static _Noreturn void die(const char *what, int err)
{
    fprintf(stderr, "qbench: %s: %s\n", what, strerror(err));
    exit(1);
}

/* pthread functions return the error number instead of setting errno. */
static void check_pthread(int rc, const char *what)
{
    if (rc != 0)
        die(what, rc);
}

/* ---- time ------------------------------------------------------------------- */

static bool have_rdtscp;

/* The fences keep the read from being reordered before the earlier instructions
 * (lfence before rdtsc) and the timed code from starting before it (lfence after). */
static inline uint64_t tsc_begin(void)
{
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
}

/* rdtscp waits for every earlier instruction to complete; the lfence after it
 * keeps later ones from starting before the read. */
static inline uint64_t tsc_end(void)
{
    if (have_rdtscp) {
        unsigned int aux;
        uint64_t t = __rdtscp(&aux);
        _mm_lfence();
        return t;
    }
    return tsc_begin();
}

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        die("clock_gettime", errno);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec req = { .tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u) };
    struct timespec rem;
    /* nanosleep reports the time left when a signal interrupts it. */
    while (nanosleep(&req, &rem) != 0) {
        if (errno != EINTR)
            die("nanosleep", errno);
        req = rem;
    }
}

/* One (TSC, monotonic ns) pair: the clock read sandwiched between two TSC reads,
 * paired with their midpoint. */
static void clock_pair(uint64_t *tsc, uint64_t *ns)
{
    uint64_t a = tsc_begin();
    *ns = monotonic_ns();
    uint64_t b = tsc_end();
    *tsc = a + (b - a) / 2;
}

/* The TSC frequency in MHz, measured against CLOCK_MONOTONIC over ~100 ms. The
 * guest's own calibration is not trusted: under TCG the TSC follows the host's,
 * whatever the guest kernel believes. */
static uint64_t measure_tsc_mhz(void)
{
    uint64_t tsc0, ns0, tsc1, ns1;
    clock_pair(&tsc0, &ns0);
    sleep_ns(100u * 1000u * 1000u);
    clock_pair(&tsc1, &ns1);
    uint64_t dns = ns1 - ns0;
    uint64_t dtsc = tsc1 - tsc0;
    if (dns == 0 || tsc1 <= tsc0) {
        fprintf(stderr, "qbench: the TSC or the monotonic clock did not advance\n");
        exit(1);
    }
    /* dtsc is ~1e8 to 1e9 over 100 ms: times 1000 stays far below 2^64. */
    uint64_t mhz = (dtsc * 1000u + dns / 2) / dns;
    return mhz > 0 ? mhz : 1;
}

/* ---- samples and the line format --------------------------------------------- */

struct samples {
    uint64_t *v;
    size_t n;
    size_t cap;
    uint64_t deadline;  /* TSC value after which no sample is started */
};

static size_t max_samples = 20000;
static uint64_t budget_ms = 300;
static uint64_t tsc_mhz;

static void samples_start(struct samples *s)
{
    s->n = 0;
    /* main bounds budget_ms (≤ 600,000) and tsc_mhz (≤ 1,000,000): the product
     * times 1000 is at most 6e14, far below 2^64. */
    s->deadline = tsc_begin() + budget_ms * tsc_mhz * 1000u;
}

static inline bool samples_more(const struct samples *s)
{
    return s->n < s->cap && tsc_begin() < s->deadline;
}

static inline void samples_add(struct samples *s, uint64_t v)
{
    s->v[s->n++] = v;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void flush_stdout(void)
{
    if (fflush(stdout) != 0)
        die("writing stdout", errno);
}

static void skip(const char *id, const char *why)
{
    printf("SKIP: %s: %s\n", id, why);
    flush_stdout();
}

/* Sorts the samples and prints the BENCH line: median = the upper middle sample
 * (as the kernel's Samples.median), p99 = the nearest-rank 99th percentile (times:
 * the worse direction is up). */
static void report(const char *id, struct samples *s, const char *label)
{
    if (s->n == 0) {
        skip(id, "no sample within the time budget");
        return;
    }
    qsort(s->v, s->n, sizeof s->v[0], cmp_u64);
    uint64_t median = s->v[s->n / 2];
    size_t rank = (s->n * 99 + 99) / 100;      /* ceil(0.99 n), ≥ 1 */
    uint64_t p99 = s->v[rank - 1];
    printf("BENCH: id=%s unit=cycles median=%" PRIu64 " p99=%" PRIu64 " n=%zu label=%s\n",
           id, median, p99, s->n, label);
    flush_stdout();
}

/* ---- CPUs and threads -------------------------------------------------------- */

static int cpus[MAX_CPUS];      /* the CPUs we may run on, in increasing order */
static int ncpus;

static void find_cpus(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        die("sched_getaffinity", errno);
    ncpus = 0;
    for (int c = 0; c < MAX_CPUS; c++)
        if (CPU_ISSET(c, &set))
            cpus[ncpus++] = c;
    if (ncpus == 0) {
        fprintf(stderr, "qbench: no CPU in the affinity mask\n");
        exit(1);
    }
}

/* Pins the calling thread; the kernel migrates it before the call returns. */
static void pin_self(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    check_pthread(pthread_setaffinity_np(pthread_self(), sizeof set, &set), "pthread_setaffinity_np");
}

/* Starts a thread already pinned, so it never runs anywhere else. */
static pthread_t start_pinned(void *(*fn)(void *), void *arg, int cpu)
{
    pthread_attr_t attr;
    cpu_set_t set;
    pthread_t t;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    check_pthread(pthread_attr_init(&attr), "pthread_attr_init");
    check_pthread(pthread_attr_setaffinity_np(&attr, sizeof set, &set), "pthread_attr_setaffinity_np");
    check_pthread(pthread_create(&t, &attr, fn, arg), "pthread_create");
    check_pthread(pthread_attr_destroy(&attr), "pthread_attr_destroy");
    return t;
}

static void join(pthread_t t)
{
    check_pthread(pthread_join(t, NULL), "pthread_join");
}

/* The word two threads hand back and forth, alone on its cache line: nothing else
 * either thread writes may share the line (the line's transfers are what
 * mem.pingpong measures and what the futex measurements must not pay extra). */
struct shared_word {
    _Alignas(64) uint32_t word;
    char pad[64 - sizeof(uint32_t)];
};

/* Values of the word. Every access goes through the __atomic builtins: the word is
 * a plain uint32_t (what futex(2) takes), never an _Atomic object cast away. */
enum { MAIN_TURN = 0, PARTNER_TURN = 1, STOP = 2 };

static inline uint32_t load_acq(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void store_rel(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

/* ---- futexes ------------------------------------------------------------------ */

/* syscall() is variadic and reads every argument as a long: they are passed as
 * longs (or pointers) so that no int is read through a wider va_arg type. */

/* Sleeps while *addr == expected. EAGAIN (the value already changed) and EINTR
 * are normal outcomes: the caller re-reads the word and decides. */
static void futex_wait(uint32_t *addr, uint32_t expected)
{
    if (syscall(SYS_futex, addr, (long)FUTEX_WAIT_PRIVATE, (long)expected, (void *)NULL, (void *)NULL, 0L) == -1 &&
        errno != EAGAIN && errno != EINTR)
        die("futex(FUTEX_WAIT)", errno);
}

static void futex_wake(uint32_t *addr)
{
    if (syscall(SYS_futex, addr, (long)FUTEX_WAKE_PRIVATE, 1L, (void *)NULL, (void *)NULL, 0L) == -1)
        die("futex(FUTEX_WAKE)", errno);
}

/* The futex ping-pong. The partner sleeps until it is its turn, hands the turn
 * back and wakes the main thread. The wake is unconditional (no waiter count, as
 * a minimal futex hand-over): each side makes one FUTEX_WAKE per hand-over, and
 * sleeps in FUTEX_WAIT unless the turn is already back when it looks. */
static void *futex_partner(void *arg)
{
    uint32_t *w = arg;
    for (;;) {
        uint32_t v;
        while ((v = load_acq(w)) == MAIN_TURN)
            futex_wait(w, MAIN_TURN);
        if (v == STOP)
            return NULL;
        store_rel(w, MAIN_TURN);
        futex_wake(w);
    }
}

static void futex_round_trip(uint32_t *w)
{
    store_rel(w, PARTNER_TURN);
    futex_wake(w);
    while (load_acq(w) == PARTNER_TURN)
        futex_wait(w, PARTNER_TURN);
}

/* Runs the futex ping-pong between the calling thread on cpu_main and a partner
 * on cpu_partner; each sample is one round trip divided by `divisor`. */
static void futex_pingpong(struct samples *s, int cpu_main, int cpu_partner, uint64_t divisor)
{
    static struct shared_word sw;
    store_rel(&sw.word, MAIN_TURN);
    pin_self(cpu_main);
    pthread_t t = start_pinned(futex_partner, &sw.word, cpu_partner);
    for (int i = 0; i < WARMUP; i++)
        futex_round_trip(&sw.word);
    samples_start(s);
    while (samples_more(s)) {
        uint64_t t0 = tsc_begin();
        futex_round_trip(&sw.word);
        uint64_t t1 = tsc_end();
        samples_add(s, (t1 - t0) / divisor);
    }
    /* It is the main thread's turn here: the partner sleeps or is about to. */
    store_rel(&sw.word, STOP);
    futex_wake(&sw.word);
    join(t);
}

/* ---- the measurements -------------------------------------------------------- */

/* The pair of CPUs for the two-CPU measurements: 1 and 2 as Quartet's (CPU 0 takes
 * the console's and most devices' interrupts), 0 and 1 when there are only two. */
static void cpu_pair(int *a, int *b)
{
    if (ncpus >= 3) {
        *a = cpus[1];
        *b = cpus[2];
    } else {
        *a = cpus[0];
        *b = cpus[1];
    }
}

/* switch.yield: two threads on one CPU; a round trip is two switches (to the
 * partner when the main thread sleeps, back when the partner does). */
static void bench_switch(struct samples *s)
{
    int cpu = ncpus >= 2 ? cpus[1] : cpus[0];
    futex_pingpong(s, cpu, cpu, 2);
    report("switch.yield", s, "thread switch on one CPU (futex ping-pong, per switch)");
}

/* wakeup.roundtrip: each side sleeps in FUTEX_WAIT on its own CPU, so a round trip
 * is two remote wake-ups (IPI, or the idle loop noticing) and two sleeps. */
static void bench_wakeup(struct samples *s)
{
    if (ncpus < 2) {
        skip("wakeup.roundtrip", "needs 2 CPUs");
        return;
    }
    int a, b;
    cpu_pair(&a, &b);
    futex_pingpong(s, a, b, 1);
    report("wakeup.roundtrip", s, "futex wake round trip across CPUs");
}

static void *spin_partner(void *arg)
{
    uint32_t *w = arg;
    for (;;) {
        uint32_t v;
        while ((v = load_acq(w)) == MAIN_TURN)
            _mm_pause();
        if (v == STOP)
            return NULL;
        store_rel(w, MAIN_TURN);
    }
}

static inline void spin_round_trip(uint32_t *w)
{
    store_rel(w, PARTNER_TURN);
    while (load_acq(w) == PARTNER_TURN)
        _mm_pause();
}

/* mem.pingpong: the same hand-over with both sides spinning: two cache-line
 * transfers per round trip and no kernel at all (the hardware floor). */
static void bench_mem_pingpong(struct samples *s)
{
    if (ncpus < 2) {
        skip("mem.pingpong", "needs 2 CPUs");
        return;
    }
    static struct shared_word sw;
    int a, b;
    cpu_pair(&a, &b);
    store_rel(&sw.word, MAIN_TURN);
    pin_self(a);
    pthread_t t = start_pinned(spin_partner, &sw.word, b);
    for (int i = 0; i < WARMUP * BATCH; i++)
        spin_round_trip(&sw.word);
    samples_start(s);
    while (samples_more(s)) {
        uint64_t t0 = tsc_begin();
        for (int i = 0; i < BATCH; i++)
            spin_round_trip(&sw.word);
        uint64_t t1 = tsc_end();
        samples_add(s, (t1 - t0) / BATCH);
    }
    store_rel(&sw.word, STOP);
    join(t);
    report("mem.pingpong", s, "spin ping-pong on a shared cache line between two CPUs (round trip)");
}

/* membarrier.all. MEMBARRIER_CMD_PRIVATE_EXPEDITED interrupts only the CPUs whose
 * current task runs in this process's address space: an idle CPU, or one running
 * another process, is skipped and the call degenerates to a bare system call. So
 * every other CPU gets a thread of ours spinning in user mode (with pause) for the
 * whole measurement. Spinning rather than sleeping or yielding: a thread that
 * sleeps leaves its CPU idle (no IPI), and one that yields spends its time in the
 * kernel, where the IPI would hit a different path than on a CPU running user
 * code. This is the counterpart of Quartet's rendezvous.all / cpusync.all, where
 * every other CPU must answer an IPI. The price: every vCPU is busy, so when QEMU
 * has more vCPUs than the host has free cores, each IPI also waits for the host
 * to schedule its target's vCPU thread, and the figure measures that too. */
static uint32_t spinners_stop;
static uint32_t spinners_running;

static void *spinner(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&spinners_running, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&spinners_stop, __ATOMIC_ACQUIRE))
        _mm_pause();
    return NULL;
}

static long membarrier(int cmd)
{
    return syscall(SYS_membarrier, (long)cmd, 0L, 0L);  /* no flags, no cpu_id */
}

static void bench_membarrier(struct samples *s)
{
    long supported = membarrier(MEMBARRIER_CMD_QUERY);
    if (supported == -1) {
        if (errno == ENOSYS) {
            skip("membarrier.all", "membarrier(2) not in this kernel (ENOSYS)");
            return;
        }
        die("membarrier(MEMBARRIER_CMD_QUERY)", errno);
    }
    if (!(supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) {
        skip("membarrier.all", "MEMBARRIER_CMD_PRIVATE_EXPEDITED not supported");
        return;
    }
    if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0)
        die("membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)", errno);

    pin_self(cpus[0]);
    pthread_t threads[MAX_CPUS];
    int nthreads = 0;
    __atomic_store_n(&spinners_stop, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&spinners_running, 0, __ATOMIC_RELAXED);
    for (int i = 1; i < ncpus; i++)
        threads[nthreads++] = start_pinned(spinner, NULL, cpus[i]);
    /* Every spinner on its CPU before the first sample. */
    while (__atomic_load_n(&spinners_running, __ATOMIC_ACQUIRE) != (uint32_t)nthreads)
        _mm_pause();

    for (int i = 0; i < WARMUP; i++)
        if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0)
            die("membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)", errno);
    samples_start(s);
    while (samples_more(s)) {
        uint64_t t0 = tsc_begin();
        long rc = membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
        uint64_t t1 = tsc_end();
        if (rc != 0)
            die("membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)", errno);
        samples_add(s, t1 - t0);
    }
    __atomic_store_n(&spinners_stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < nthreads; i++)
        join(threads[i]);
    report("membarrier.all", s, "membarrier PRIVATE_EXPEDITED, a user thread spinning on every other CPU");
}

/* spin.uncontended: a lock+unlock pair on a lock no one else touches. The return
 * codes are or-ed together and checked once per batch, to keep a compare per call
 * out of what is timed. */
static void bench_spin(struct samples *s)
{
    pthread_spinlock_t lock;
    check_pthread(pthread_spin_init(&lock, PTHREAD_PROCESS_PRIVATE), "pthread_spin_init");
    pin_self(cpus[0]);
    samples_start(s);
    while (samples_more(s)) {
        int err = 0;
        uint64_t t0 = tsc_begin();
        for (int i = 0; i < BATCH; i++) {
            err |= pthread_spin_lock(&lock);
            err |= pthread_spin_unlock(&lock);
        }
        uint64_t t1 = tsc_end();
        check_pthread(err, "pthread_spin_lock/unlock");
        samples_add(s, (t1 - t0) / BATCH);
    }
    check_pthread(pthread_spin_destroy(&lock), "pthread_spin_destroy");
    report("spin.uncontended", s, "pthread spinlock lock+unlock, no contention");
}

/* heap.alloc64: malloc(64) + free. The empty asm takes the pointer and clobbers
 * memory, so the compiler must assume the block is used and cannot elide the
 * pair (GCC removes a malloc whose result is only freed). */
static void bench_heap(struct samples *s)
{
    pin_self(cpus[0]);
    samples_start(s);
    while (samples_more(s)) {
        bool failed = false;
        uint64_t t0 = tsc_begin();
        for (int i = 0; i < BATCH; i++) {
            void *p = malloc(64);
            failed |= p == NULL;
            __asm__ volatile("" : : "r"(p) : "memory");
            free(p);
        }
        uint64_t t1 = tsc_end();
        if (failed)
            die("malloc(64)", ENOMEM);
        samples_add(s, (t1 - t0) / BATCH);
    }
    report("heap.alloc64", s, "malloc(64) + free (glibc)");
}

/* syscall.roundtrip: getppid, the cheapest system call that cannot be answered
 * from user space (no vDSO path, no caching in glibc: syscall() always traps). */
static void bench_syscall(struct samples *s)
{
    pin_self(cpus[0]);
    samples_start(s);
    while (samples_more(s)) {
        long worst = 0;
        uint64_t t0 = tsc_begin();
        for (int i = 0; i < BATCH; i++) {
            long r = syscall(SYS_getppid);
            worst = r < worst ? r : worst;
        }
        uint64_t t1 = tsc_end();
        if (worst < 0)
            die("getppid", errno);
        samples_add(s, (t1 - t0) / BATCH);
    }
    report("syscall.roundtrip", s, "getppid system call round trip");
}

/* ---- the environment line ------------------------------------------------------ */

/* The first "model name" of /proc/cpuinfo, or "unknown". */
static void cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL) {
        fprintf(stderr, "qbench: /proc/cpuinfo: %s (is /proc mounted?)\n", strerror(errno));
        return;
    }
    char line[512];
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *colon = strchr(line, ':');
        if (colon == NULL)
            continue;
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t n = strcspn(v, "\r\n");
        snprintf(buf, len, "%.*s", (int)(n < INT_MAX ? n : INT_MAX), v);
        break;
    }
    if (fclose(f) != 0)
        die("closing /proc/cpuinfo", errno);
}

static void print_env(void)
{
    struct utsname u;
    if (uname(&u) != 0)
        die("uname", errno);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online < 1)
        online = ncpus;  /* sysconf found neither /sys nor /proc: the affinity count */
    char model[256];
    cpu_model(model, sizeof model);
    printf("BENCHENV: system=linux smp=%ld tsc_mhz=%" PRIu64 " kernel=%s cpu=%s\n",
           online, tsc_mhz, u.release, model);
    flush_stdout();
}

/* ---- main ------------------------------------------------------------------------- */

static uint64_t parse_count(const char *opt, const char *arg, uint64_t max)
{
    if (arg == NULL) {
        fprintf(stderr, "qbench: %s needs a value\n", opt);
        exit(2);
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-' || v < 1 || v > max) {
        fprintf(stderr, "qbench: %s wants a whole number from 1 to %" PRIu64 ", not '%s'\n", opt, max, arg);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    bool poweroff = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--ms") == 0) {
            budget_ms = parse_count("--ms", argv[i + 1], 600000);
            i++;
        } else if (strcmp(argv[i], "--samples") == 0) {
            max_samples = parse_count("--samples", argv[i + 1], 10000000);
            i++;
        } else if (strcmp(argv[i], "--poweroff") == 0) {
            poweroff = true;
        } else {
            fprintf(stderr, "usage: qbench [--ms N] [--samples N] [--poweroff]\n");
            return 2;
        }
    }
    /* One write per line even when stdout is not a terminal, so that kernel
     * messages on the same console cannot land inside a line. */
    if (setvbuf(stdout, NULL, _IOLBF, 0) != 0) {
        fprintf(stderr, "qbench: setvbuf failed\n");
        return 1;
    }

    unsigned int eax, ebx, ecx, edx;
    have_rdtscp = __get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx) && (edx & (1u << 27));

    find_cpus();
    tsc_mhz = measure_tsc_mhz();
    /* Keeps samples_start's budget_ms * tsc_mhz * 1000 far from overflowing. */
    if (tsc_mhz > 1000000) {
        fprintf(stderr, "qbench: implausible TSC frequency %" PRIu64 " MHz\n", tsc_mhz);
        return 1;
    }
    print_env();

    struct samples s = { .cap = max_samples };
    s.v = calloc(max_samples, sizeof s.v[0]);
    if (s.v == NULL)
        die("allocating the sample array", ENOMEM);

    bench_switch(&s);
    bench_wakeup(&s);
    bench_mem_pingpong(&s);
    bench_membarrier(&s);
    bench_spin(&s);
    bench_heap(&s);
    bench_syscall(&s);
    free(s.v);

    printf("End of test: SUCCESS\n");
    flush_stdout();
    if (poweroff) {
        sync();
        reboot(RB_POWER_OFF);
        /* reboot only returns on failure. */
        die("reboot(RB_POWER_OFF)", errno);
    }
    return 0;
}
