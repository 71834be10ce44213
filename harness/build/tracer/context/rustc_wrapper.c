/*
 * mas-harness rustc wrapper: records every rustc invocation of a cargo build, from inside the build.
 *
 * Cargo runs it as RUSTC_WRAPPER: `rustc-wrapper RUSTC ARGS...` (or, under cargo-auditable, which sets
 * RUSTC_WORKSPACE_WRAPPER, `rustc-wrapper cargo-auditable RUSTC ARGS...`). It runs the rest of its argv
 * unchanged, forwards every byte rustc writes on stderr to cargo as it comes, and appends one JSON line per
 * invocation to $MAS_HARNESS_TRACE_DIR/records.jsonl with a single O_APPEND write, so concurrent rustc
 * never interleave their records. Recording never changes the build: a record that cannot be written is
 * lost, the exit status is rustc's.
 *
 * Build scripts are run by cargo itself, not through RUSTC_WRAPPER. So once rustc has compiled one, the
 * wrapper moves the binary aside (NAME.mas-harness-real) and puts a two-line shell script in its place
 * that runs it through this wrapper in run mode: `rustc-wrapper --mas-harness-run REAL ARGS...`. Cargo
 * hard-links and runs that script as it would the binary; the real build script gets the same argv[0],
 * arguments, environment, working directory and standard streams.
 *
 * Written in C, compiled in the builder stage by the image's own `cc` (every Rust builder image has one:
 * rustc links through it), because what it measures is C's: fork, wait, getrusage(RUSAGE_CHILDREN),
 * clock_gettime. Rust without crates cannot reach getrusage without hand-written FFI declarations.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RECORD_VERSION 1
#define TRACE_DIR_ENV "MAS_HARNESS_TRACE_DIR"
#define RECORDS_FILE "records.jsonl"
#define RUN_FLAG "--mas-harness-run"
#define REAL_SUFFIX ".mas-harness-real"
#define METADATA_NOTICE "\"emit\":\"metadata\""

/* ---- a growing byte buffer, for the record and the shim ---------------------------------------- */

struct buf {
    char *data;
    size_t len, cap;
    int failed;
};

static void buf_add(struct buf *b, const char *data, size_t len) {
    if (b->failed) return;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len + 1) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (grown == NULL) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *text) { buf_add(b, text, strlen(text)); }

static void buf_fmt(struct buf *b, const char *format, ...) {
    char small[256];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(small, sizeof small, format, args);
    va_end(args);
    if (n > 0) buf_add(b, small, (size_t)n < sizeof small ? (size_t)n : sizeof small - 1);
}

/* A JSON string; bytes >= 0x80 pass through (paths and arguments are UTF-8 in practice). */
static void buf_json(struct buf *b, const char *text) {
    if (text == NULL) {
        buf_str(b, "null");
        return;
    }
    buf_str(b, "\"");
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        switch (*p) {
        case '"': buf_str(b, "\\\""); break;
        case '\\': buf_str(b, "\\\\"); break;
        case '\n': buf_str(b, "\\n"); break;
        case '\r': buf_str(b, "\\r"); break;
        case '\t': buf_str(b, "\\t"); break;
        default:
            if (*p < 0x20) buf_fmt(b, "\\u%04x", *p);
            else buf_add(b, (const char *)p, 1);
        }
    }
    buf_str(b, "\"");
}

static void buf_key(struct buf *b, const char *key) {
    buf_str(b, b->len > 1 ? ",\"" : "\"");
    buf_str(b, key);
    buf_str(b, "\":");
}

static void buf_time(struct buf *b, const struct timespec *t) {
    buf_fmt(b, "%lld.%09ld", (long long)t->tv_sec, (long)t->tv_nsec);
}

/* ---- what rustc is asked to do ------------------------------------------------------------------ */

struct invocation {
    const char *crate_name, *target, *out_dir, *codegen_units, *lto, *opt_level, *extra_filename, *metadata;
    const char **externs;
    int extern_count;
    struct buf crate_types; /* comma-joined, as rustc accepts them */
    int test;
};

/* `-C key=value` (or a bare `-C key`): the codegen options the trace keeps. */
static void codegen_option(struct invocation *inv, const char *option) {
    const char *eq = strchr(option, '=');
    size_t key = eq ? (size_t)(eq - option) : strlen(option);
    const char *value = eq ? eq + 1 : NULL;
#define IS(name) (key == strlen(name) && strncmp(option, name, key) == 0)
    if (IS("codegen-units")) inv->codegen_units = value;
    else if (IS("lto")) inv->lto = value ? value : "fat"; /* a bare -C lto is fat LTO */
    else if (IS("opt-level")) inv->opt_level = value;
    else if (IS("extra-filename")) inv->extra_filename = value;
    else if (IS("metadata")) inv->metadata = value;
#undef IS
}

/* The value of `--name VALUE` or `--name=VALUE` at argv[*i] (advancing *i past it), or NULL. */
static const char *option_value(int argc, char **argv, int *i, const char *name) {
    size_t len = strlen(name);
    if (strncmp(argv[*i], name, len) != 0) return NULL;
    if (argv[*i][len] == '=') return argv[*i] + len + 1;
    if (argv[*i][len] == '\0' && *i + 1 < argc) return argv[++*i];
    return NULL;
}

static void parse_invocation(struct invocation *inv, int argc, char **argv) {
    memset(inv, 0, sizeof *inv);
    inv->externs = calloc((size_t)argc, sizeof *inv->externs);
    for (int i = 1; i < argc; i++) {
        const char *value;
        if ((value = option_value(argc, argv, &i, "--crate-name"))) inv->crate_name = value;
        else if ((value = option_value(argc, argv, &i, "--crate-type"))) {
            if (inv->crate_types.len) buf_str(&inv->crate_types, ",");
            buf_str(&inv->crate_types, value);
        } else if ((value = option_value(argc, argv, &i, "--target"))) inv->target = value;
        else if ((value = option_value(argc, argv, &i, "--out-dir"))) inv->out_dir = value;
        else if ((value = option_value(argc, argv, &i, "--extern"))) {
            if (inv->externs) inv->externs[inv->extern_count++] = value;
        } else if ((value = option_value(argc, argv, &i, "--codegen"))) codegen_option(inv, value);
        else if (strcmp(argv[i], "-C") == 0 && i + 1 < argc) codegen_option(inv, argv[++i]);
        else if (strncmp(argv[i], "-C", 2) == 0 && argv[i][2]) codegen_option(inv, argv[i] + 2);
        else if (strcmp(argv[i], "--test") == 0) inv->test = 1;
    }
}

static int has_crate_type(const struct invocation *inv, const char *type) {
    const char *types = inv->crate_types.data;
    size_t len = strlen(type);
    for (const char *p = types; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, type, n) == 0) return 1;
        p = end ? end + 1 : p + n;
    }
    return 0;
}

/* lib, bin, proc-macro, build-script (its compile), test; query for cargo's `rustc -vV` and `--print`s. */
static const char *unit_kind(const struct invocation *inv) {
    if (inv->crate_name == NULL || strcmp(inv->crate_name, "___") == 0) return "query";
    if (inv->test) return "test";
    if (has_crate_type(inv, "proc-macro")) return "proc-macro";
    if (has_crate_type(inv, "bin"))
        return strncmp(inv->crate_name, "build_script_", 13) == 0 ? "build-script" : "bin";
    if (has_crate_type(inv, "lib") || has_crate_type(inv, "rlib") || has_crate_type(inv, "dylib") ||
        has_crate_type(inv, "cdylib") || has_crate_type(inv, "staticlib"))
        return "lib";
    return "other";
}

/* ---- the machine, as the build sees it ----------------------------------------------------------- */

static void read_small(const char *path, char *out, size_t size) {
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, out, size - 1);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
}

static void buf_loadavg(struct buf *b) {
    char text[128];
    double one, five, fifteen;
    read_small("/proc/loadavg", text, sizeof text);
    if (sscanf(text, "%lf %lf %lf", &one, &five, &fifteen) == 3) buf_fmt(b, "[%.2f,%.2f,%.2f]", one, five, fifteen);
    else buf_str(b, "null");
}

/* A process's VmHWM (its peak resident set) in KiB, -1 when unreadable. */
static long vm_hwm_kib(pid_t pid) {
    char path[64], text[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    read_small(path, text, sizeof text);
    const char *line = strstr(text, "VmHWM:");
    return line ? strtol(line + 6, NULL, 10) : -1;
}

static void buf_machine(struct buf *b) {
    cpu_set_t set;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    buf_key(b, "cpus_online");
    buf_fmt(b, "%ld", sysconf(_SC_NPROCESSORS_ONLN));
    buf_key(b, "cpus_allowed");
    if (sched_getaffinity(0, sizeof set, &set) == 0) buf_fmt(b, "%d", CPU_COUNT(&set));
    else buf_str(b, "null");
    buf_key(b, "memory_bytes");
    if (pages > 0 && page > 0) buf_fmt(b, "%lld", (long long)pages * page);
    else buf_str(b, "null");
    char limit[64];
    read_small("/sys/fs/cgroup/memory.max", limit, sizeof limit);
    limit[strcspn(limit, "\n")] = '\0';
    buf_key(b, "cgroup_memory_max");
    buf_json(b, limit[0] ? limit : NULL);
}

/* ---- running the child ---------------------------------------------------------------------------- */

static volatile sig_atomic_t child_pid = 0;

static void forward_signal(int sig) {
    if (child_pid > 0) kill(child_pid, sig);
}

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void install_forwarding(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = forward_signal;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaction(forwarded[i], &action, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed stderr must not kill the wrapper before it has waited */
}

static void write_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return; /* cargo stopped reading: keep draining so that rustc can finish */
        data += n;
        len -= (size_t)n;
    }
}

struct outcome {
    struct timespec start, end, metadata_ready;
    int has_metadata_ready;
    int status;
    int spawned;
    struct rusage usage;
};

/*
 * Run `program` with `args` (args[0] is what the child sees as argv[0]). With `watch_stderr`, the child's
 * stderr is a pipe that is copied to ours byte for byte, and the time of rustc's `"emit":"metadata"`
 * artifact notice is kept.
 */
static void run_child(const char *program, char **args, int watch_stderr, struct outcome *out) {
    int pipe_fds[2] = {-1, -1};
    memset(out, 0, sizeof *out);
    if (watch_stderr && pipe2(pipe_fds, O_CLOEXEC) != 0) watch_stderr = 0;
    install_forwarding();
    clock_gettime(CLOCK_REALTIME, &out->start);
    pid_t pid = fork();
    if (pid == 0) {
        for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) signal(forwarded[i], SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        if (watch_stderr) dup2(pipe_fds[1], STDERR_FILENO); /* dup2 clears close-on-exec on fd 2 */
        execvp(program, args);
        fprintf(stderr, "mas-harness rustc wrapper: cannot run %s: %s\n", program, strerror(errno));
        _exit(127);
    }
    if (pid < 0) {
        out->status = -1;
        if (watch_stderr) {
            close(pipe_fds[0]);
            close(pipe_fds[1]);
        }
        return;
    }
    out->spawned = 1;
    child_pid = pid;
    if (watch_stderr) {
        const size_t keep = sizeof METADATA_NOTICE - 2; /* a notice split across two reads is still seen */
        char chunk[65536], window[sizeof METADATA_NOTICE + sizeof chunk];
        size_t carried = 0;
        close(pipe_fds[1]);
        for (;;) {
            ssize_t n = read(pipe_fds[0], chunk, sizeof chunk);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            write_all(STDERR_FILENO, chunk, (size_t)n);
            if (out->has_metadata_ready) continue;
            memcpy(window + carried, chunk, (size_t)n);
            size_t filled = carried + (size_t)n;
            if (memmem(window, filled, METADATA_NOTICE, sizeof METADATA_NOTICE - 1) != NULL) {
                clock_gettime(CLOCK_REALTIME, &out->metadata_ready);
                out->has_metadata_ready = 1;
                continue;
            }
            carried = filled < keep ? filled : keep;
            memmove(window, window + filled - carried, carried);
        }
        close(pipe_fds[0]);
    }
    while (waitpid(pid, &out->status, 0) < 0 && errno == EINTR) {
    }
    clock_gettime(CLOCK_REALTIME, &out->end);
    /* Every process the wrapper waited for, and those they waited for: rustc, the linker, cargo-auditable. */
    getrusage(RUSAGE_CHILDREN, &out->usage);
}

static int exit_code_of(const struct outcome *out) {
    if (!out->spawned) return 127;
    if (WIFEXITED(out->status)) return WEXITSTATUS(out->status);
    if (WIFSIGNALED(out->status)) return 128 + WTERMSIG(out->status);
    return 1;
}

/* Die of the child's signal, as a shell would report it; otherwise exit with its code. */
static void exit_like(const struct outcome *out) {
    if (out->spawned && WIFSIGNALED(out->status)) {
        int sig = WTERMSIG(out->status);
        signal(sig, SIG_DFL);
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        raise(sig);
    }
    exit(exit_code_of(out));
}

/* ---- the record ----------------------------------------------------------------------------------- */

static void buf_outcome(struct buf *b, const struct outcome *out, pid_t parent) {
    buf_key(b, "start");
    buf_time(b, &out->start);
    buf_key(b, "end");
    buf_time(b, &out->end);
    buf_key(b, "exit_code");
    buf_fmt(b, "%d", exit_code_of(out));
    buf_key(b, "signal");
    if (out->spawned && WIFSIGNALED(out->status)) buf_fmt(b, "%d", WTERMSIG(out->status));
    else buf_str(b, "null");
    buf_key(b, "maxrss_kib");
    buf_fmt(b, "%ld", out->usage.ru_maxrss);
    buf_key(b, "user_seconds");
    buf_fmt(b, "%ld.%06ld", (long)out->usage.ru_utime.tv_sec, (long)out->usage.ru_utime.tv_usec);
    buf_key(b, "system_seconds");
    buf_fmt(b, "%ld.%06ld", (long)out->usage.ru_stime.tv_sec, (long)out->usage.ru_stime.tv_usec);
    long hwm = vm_hwm_kib(parent);
    buf_key(b, "parent_vm_hwm_kib");
    if (hwm >= 0) buf_fmt(b, "%ld", hwm);
    else buf_str(b, "null");
}

static void buf_common(struct buf *b, const char *mode, int argc, char **argv, pid_t parent) {
    buf_str(b, "{");
    buf_key(b, "v");
    buf_fmt(b, "%d", RECORD_VERSION);
    buf_key(b, "mode");
    buf_json(b, mode);
    buf_key(b, "pid");
    buf_fmt(b, "%d", (int)getpid());
    buf_key(b, "ppid");
    buf_fmt(b, "%d", (int)parent);
    buf_key(b, "argv");
    buf_str(b, "[");
    for (int i = 0; i < argc; i++) {
        if (i) buf_str(b, ",");
        buf_json(b, argv[i]);
    }
    buf_str(b, "]");
    buf_key(b, "out_dir_env");
    buf_json(b, getenv("OUT_DIR"));
    buf_key(b, "pkg_name");
    buf_json(b, getenv("CARGO_PKG_NAME"));
    buf_key(b, "num_jobs_env"); /* cargo sets it for build-script runs: the jobs it runs with */
    buf_json(b, getenv("NUM_JOBS"));
    buf_machine(b);
}

static void append_record(struct buf *b) {
    const char *dir = getenv(TRACE_DIR_ENV);
    if (dir == NULL || *dir == '\0' || b->failed) return;
    buf_str(b, "}\n");
    if (b->failed) return;
    struct buf path = {0};
    buf_str(&path, dir);
    buf_str(&path, "/" RECORDS_FILE);
    if (path.failed) return;
    int fd = open(path.data, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    free(path.data);
    if (fd < 0) return;
    /* One write: O_APPEND places it whole at the end, never interleaved with another wrapper's. */
    ssize_t n;
    do n = write(fd, b->data, b->len);
    while (n < 0 && errno == EINTR);
    close(fd);
}

/* ---- build scripts: the shim that brings their runs through the wrapper --------------------------- */

static void buf_shell_word(struct buf *b, const char *word) {
    buf_str(b, "'");
    for (const char *p = word; *p; p++) {
        if (*p == '\'') buf_str(b, "'\\''");
        else buf_add(b, p, 1);
    }
    buf_str(b, "'");
}

/* Returns NULL when the shim is in place, else why not (the build script is then left as rustc made it). */
static const char *install_shim(const struct invocation *inv, struct buf *binary) {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return "cannot read /proc/self/exe";
    self[n] = '\0';
    if (inv->out_dir == NULL) return "no --out-dir";
    buf_str(binary, inv->out_dir);
    buf_str(binary, "/");
    buf_str(binary, inv->crate_name);
    if (inv->extra_filename) buf_str(binary, inv->extra_filename);
    struct buf real = {0}, temp = {0}, script = {0};
    buf_str(&real, binary->data ? binary->data : "");
    buf_str(&real, REAL_SUFFIX);
    buf_str(&temp, binary->data ? binary->data : "");
    buf_str(&temp, ".mas-harness-shim");
    buf_str(&script, "#!/bin/sh\n# mas-harness: runs this build script through the trace wrapper\nexec ");
    buf_shell_word(&script, self);
    buf_str(&script, " " RUN_FLAG " ");
    buf_shell_word(&script, real.data ? real.data : "");
    buf_str(&script, " \"$0\" \"$@\"\n");
    const char *problem = NULL;
    if (binary->failed || real.failed || temp.failed || script.failed) problem = "out of memory";
    else {
        int fd = open(temp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
        if (fd < 0) problem = "cannot write the shim";
        else {
            ssize_t written = write(fd, script.data, script.len);
            if (close(fd) != 0 || written != (ssize_t)script.len) problem = "cannot write the shim";
        }
        if (problem == NULL && rename(binary->data, real.data) != 0) problem = "cannot move the build script aside";
        else if (problem == NULL && rename(temp.data, binary->data) != 0) {
            rename(real.data, binary->data);
            problem = "cannot put the shim in place";
        }
        if (problem) unlink(temp.data);
    }
    free(real.data);
    free(temp.data);
    free(script.data);
    return problem;
}

/* ---- the two modes -------------------------------------------------------------------------------- */

static int rustc_mode(int argc, char **argv) {
    pid_t parent = getppid();
    struct invocation inv;
    parse_invocation(&inv, argc, argv);
    struct buf record = {0};
    buf_common(&record, "rustc", argc, argv, parent);
    buf_key(&record, "loadavg_start");
    buf_loadavg(&record);

    struct outcome out;
    run_child(argv[1], argv + 1, 1, &out);

    const char *kind = unit_kind(&inv);
    buf_key(&record, "kind");
    buf_json(&record, kind);
    buf_key(&record, "crate_name");
    buf_json(&record, inv.crate_name);
    buf_key(&record, "crate_types");
    buf_json(&record, inv.crate_types.data ? inv.crate_types.data : "");
    buf_key(&record, "target");
    buf_json(&record, inv.target);
    buf_key(&record, "out_dir");
    buf_json(&record, inv.out_dir);
    buf_key(&record, "codegen_units");
    buf_json(&record, inv.codegen_units);
    buf_key(&record, "lto");
    buf_json(&record, inv.lto);
    buf_key(&record, "opt_level");
    buf_json(&record, inv.opt_level);
    buf_key(&record, "extra_filename");
    buf_json(&record, inv.extra_filename);
    buf_key(&record, "metadata");
    buf_json(&record, inv.metadata);
    buf_key(&record, "externs");
    buf_str(&record, "[");
    for (int i = 0; i < inv.extern_count; i++) {
        if (i) buf_str(&record, ",");
        buf_json(&record, inv.externs[i]);
    }
    buf_str(&record, "]");
    buf_outcome(&record, &out, parent);
    buf_key(&record, "metadata_ready");
    if (out.has_metadata_ready) buf_time(&record, &out.metadata_ready);
    else buf_str(&record, "null");
    buf_key(&record, "loadavg_end");
    buf_loadavg(&record);

    if (strcmp(kind, "build-script") == 0 && exit_code_of(&out) == 0) {
        struct buf binary = {0};
        const char *problem = install_shim(&inv, &binary);
        buf_key(&record, "shim");
        buf_json(&record, problem ? NULL : binary.data);
        buf_key(&record, "shim_error");
        buf_json(&record, problem);
        free(binary.data);
    }
    append_record(&record);
    exit_like(&out);
    return 1;
}

/* `--mas-harness-run REAL ARGV0 ARGS...`: the build script's run, as cargo asked for it. */
static int run_mode(int argc, char **argv) {
    pid_t parent = getppid();
    if (argc < 4) {
        fprintf(stderr, "mas-harness rustc wrapper: usage: %s " RUN_FLAG " BINARY ARGV0 [ARGS...]\n", argv[0]);
        return 2;
    }
    const char *real = argv[2];
    struct buf record = {0};
    buf_common(&record, "run", argc, argv, parent);
    buf_key(&record, "kind");
    buf_json(&record, "build-script-run");
    buf_key(&record, "program");
    buf_json(&record, real);
    buf_key(&record, "loadavg_start");
    buf_loadavg(&record);

    struct outcome out;
    /* argv[3] is the path cargo ran: the script sees the argv[0] it would have seen without the shim. */
    char **args = argv + 3;
    run_child(real, args, 0, &out);

    buf_outcome(&record, &out, parent);
    buf_key(&record, "loadavg_end");
    buf_loadavg(&record);
    append_record(&record);
    exit_like(&out);
    return 1;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], RUN_FLAG) == 0) return run_mode(argc, argv);
    if (argc < 2) {
        fprintf(stderr, "mas-harness rustc wrapper: usage: %s RUSTC [ARGS...] (cargo's RUSTC_WRAPPER)\n", argv[0]);
        return 2;
    }
    return rustc_mode(argc, argv);
}
