/*
 * harness.c: drives hints_hintsd.h through the call sequences of Exim's hints layer (dbfn.c and
 * the exim_dumpdb/exim_tidydb utilities) against a running hintsd.
 *
 *     HINTSD_SOCKET=/path/to/hintsd.sock harness SPOOL_DIRECTORY
 *
 * SPOOL_DIRECTORY only makes the paths Exim would pass (SPOOL/db/NAME); nothing is created
 * there, and the harness checks that. Built and run by tests/exim_backend.rs against a fresh
 * daemon. Prints one line per failed check, then "N passed, M failed", and exits 1 if any
 * check failed. HINTSD_HARNESS_DEBUG=1 shows the backend's debug output on stderr.
 */
#define _POSIX_C_SOURCE 200809L

/* Room for a loaded machine: a call may take 5 s, a session may be waited for 10 s. */
#define HINTSD_EXIM_TIMEOUT_MS 5000
#define HINTSD_EXIM_LOCK_WAIT_MS 10000

#include "exim_shim.h"

#include "hints_hintsd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int passed;
static int failed;
static const char *spool;

/* A second client of the daemon, for looking at what the backend stored from outside. */
static hints_t *outside;

static void check(int ok, const char *what, int line) {
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL line %d: %s\n", line, what);
        fflush(stdout);
    }
}

#define CHECK(cond) check((cond) != 0, #cond, __LINE__)

static long long now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
}

/* ---- the hints layer as Exim's dbfn.c drives a backend without a lockfile --------------------- */

typedef struct {
    EXIM_DB *db;
    BOOL readonly;
} open_hints;

/* dbfn_open: no lockfile is made when the backend needs none; a read-only open goes through
 * the "multi" open (no lock), a read-write one through the plain open (the write lock). */
static BOOL hints_db_open(open_hints *open, const char *name, int flags) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/db", spool);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (exim_lockfile_needed()) {
        printf("FAIL: the backend asks for a lockfile\n");
        exit(1);
    }
    open->readonly = (flags & O_ACCMODE) == O_RDONLY;
    open->db = open->readonly ? exim_dbopen_multi__(US path, US dir, flags, 0640)
                              : exim_dbopen__(US path, US dir, flags, 0640);
    return open->db != NULL;
}

/* dbfn_close */
static void hints_db_close(open_hints *open) {
    if (open->readonly) {
        exim_dbclose_multi__(open->db);
    } else {
        exim_dbclose__(open->db);
    }
    open->db = NULL;
}

/* dbfn_read_with_length: the key with its NUL; the value copied out, then the datum freed. */
static void *hints_db_read(open_hints *open, const char *key, int *length) {
    EXIM_DATUM key_datum, value_datum;
    exim_datum_init(&key_datum);
    exim_datum_init(&value_datum);
    exim_datum_data_set(&key_datum, (void *)key);
    exim_datum_size_set(&key_datum, (unsigned)strlen(key) + 1);
    if (!exim_dbget(open->db, &key_datum, &value_datum)) {
        return NULL;
    }
    unsigned len = exim_datum_size_get(&value_datum);
    void *copy = malloc(len > 0 ? len : 1);
    memcpy(copy, exim_datum_data_get(&value_datum), len);
    if (length != NULL) {
        *length = (int)len;
    }
    exim_datum_free(&value_datum);
    return copy;
}

/* dbfn_write */
static int hints_db_write(open_hints *open, const char *key, const void *value, int length) {
    EXIM_DATUM key_datum, value_datum;
    exim_datum_init(&key_datum);
    exim_datum_init(&value_datum);
    exim_datum_data_set(&key_datum, (void *)key);
    exim_datum_size_set(&key_datum, (unsigned)strlen(key) + 1);
    exim_datum_data_set(&value_datum, (void *)value);
    exim_datum_size_set(&value_datum, (unsigned)length);
    return exim_dbput(open->db, &key_datum, &value_datum);
}

/* exim_dbmbuild's non-overwriting write */
static int hints_db_write_new(open_hints *open, const char *key, const void *value, int length) {
    EXIM_DATUM key_datum, value_datum;
    exim_datum_init(&key_datum);
    exim_datum_init(&value_datum);
    exim_datum_data_set(&key_datum, (void *)key);
    exim_datum_size_set(&key_datum, (unsigned)strlen(key) + 1);
    exim_datum_data_set(&value_datum, (void *)value);
    exim_datum_size_set(&value_datum, (unsigned)length);
    return exim_dbputb(open->db, &key_datum, &value_datum);
}

/* dbfn_delete */
static int hints_db_delete(open_hints *open, const char *key) {
    EXIM_DATUM key_datum;
    exim_datum_init(&key_datum);
    exim_datum_data_set(&key_datum, (void *)key);
    exim_datum_size_set(&key_datum, (unsigned)strlen(key) + 1);
    return exim_dbdel(open->db, &key_datum);
}

/* dbfn_scan: the cursor is made on the first call and deleted when the keys run out. */
static uschar *hints_db_scan(open_hints *open, BOOL start, EXIM_CURSOR **cursor) {
    EXIM_DATUM key_datum, value_datum;
    if (start) {
        *cursor = exim_dbcreate_cursor(open->db);
    }
    exim_datum_init(&key_datum);
    exim_datum_init(&value_datum);
    uschar *key = exim_dbscan(open->db, &key_datum, &value_datum, start, *cursor) ? exim_datum_data_get(&key_datum)
                                                                                    : NULL;
    if (key == NULL) {
        exim_dbdelete_cursor(*cursor);
    }
    return key;
}

/* ---- records shaped as Exim's --------------------------------------------------------------- */

/* dbdata_ratelimit (released layout, LP64): 24 bytes. */
typedef struct {
    time_t time_stamp;
    int time_usec;
    double rate;
} rate_record;

/* A counter record with Exim's time_stamp first. */
typedef struct {
    time_t time_stamp;
    int count;
} count_record;

/* A read-modify-write of a counter as Exim's ratelimit update does it: open read-write, read,
 * write, close. */
static BOOL increment(const char *db, const char *key) {
    open_hints open;
    if (!hints_db_open(&open, db, O_RDWR | O_CREAT)) {
        return FALSE;
    }
    count_record record = {0, 0};
    count_record *old = hints_db_read(&open, key, NULL);
    if (old != NULL) {
        record = *old;
        free(old);
    }
    record.count++;
    record.time_stamp = time(NULL);
    BOOL ok = hints_db_write(&open, key, &record, sizeof record) == 0;
    hints_db_close(&open);
    return ok;
}

static int read_count(const char *db, const char *key) {
    open_hints open;
    int count = -1;
    if (hints_db_open(&open, db, O_RDONLY)) {
        count_record *record = hints_db_read(&open, key, NULL);
        if (record != NULL) {
            count = record->count;
            free(record);
        }
        hints_db_close(&open);
    }
    return count;
}

/* ---- checks --------------------------------------------------------------------------------- */

/* Run in a child before this process makes its handle, with a socket nobody listens on: a
 * read-write open fails as a hints file that cannot be locked does, and a read-only open reads
 * nothing. The child's exit status is its count of failed checks. */
/* A read that times out behind another process's session drops the connection, and hintsd
 * ends this process's own sessions with it: a write that then believed itself under Exim's
 * lock must fail rather than go through unlocked. */
static void test_a_lost_session_fails_the_writes_under_it(void) {
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t holder = fork();
    if (holder == 0) {
        open_hints misc;
        hintsd_exim_process.client = NULL; /* an unrelated process, with its own connection */
        BOOL held = hints_db_open(&misc, "misc", O_RDWR | O_CREAT);
        (void)!write(ready[1], held ? "y" : "n", 1);
        sleep_ms(HINTSD_EXIM_TIMEOUT_MS + 1500);
        if (held) {
            hints_db_close(&misc);
        }
        _exit(0);
    }
    char held = 0;
    CHECK(read(ready[0], &held, 1) == 1 && held == 'y');
    open_hints retry, misc;
    CHECK(hints_db_open(&retry, "retry", O_RDWR | O_CREAT));
    CHECK(hints_db_write(&retry, "R:before.example", "x", 1) == 0);
    CHECK(hints_db_open(&misc, "misc", O_RDONLY));
    CHECK(hints_db_read(&misc, "anything", NULL) == NULL); /* waits behind the holder, times out */
    hints_db_close(&misc);
    CHECK(hints_db_write(&retry, "R:after.example", "x", 1) == -1);
    hints_db_close(&retry);
    int status = 0;
    CHECK(waitpid(holder, &status, 0) == holder && WIFEXITED(status));
    CHECK(hints_get(outside, "retry", "R:after.example", 15, NULL, 0, NULL, NULL, NULL) == HINTS_NOT_FOUND);
    close(ready[0]);
    close(ready[1]);
}

static void test_daemon_unavailable(void) {
    pid_t pid = fork();
    if (pid == 0) {
        char path[600];
        snprintf(path, sizeof path, "%s/nobody-listens.sock", spool);
        setenv("HINTSD_SOCKET", path, 1);
        int failures = 0;
        open_hints open;
        long long start = now_ms();
        errno = 0;
        failures += hints_db_open(&open, "ratelimit", O_RDWR | O_CREAT) ? 1 : 0;
        failures += errno == EAGAIN ? 0 : 1;
        failures += now_ms() - start < 2000 ? 0 : 1;
        failures += hints_db_open(&open, "retry", O_RDONLY) ? 0 : 1;
        if (open.db != NULL) {
            failures += hints_db_read(&open, "R:example.net", NULL) == NULL ? 0 : 1;
            failures += hints_db_write(&open, "R:example.net", "x", 1) == -1 ? 0 : 1;
            hints_db_close(&open);
        }
        _exit(failures > 100 ? 100 : failures);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        printf("  (the child without a daemon failed %d checks)\n", WEXITSTATUS(status));
    }
}

static void test_interface(void) {
    CHECK(exim_lockfile_needed() == FALSE);
    CHECK(strcmp(EXIM_DBTYPE, "hintsd") == 0);
    CHECK(EXIM_DBPUTB_OK != EXIM_DBPUTB_DUP && EXIM_DBPUTB_DUP != -1);
    CHECK(EXIM_DB_RLIMIT == 150);

    EXIM_DATUM datum;
    exim_datum_init(&datum);
    CHECK(exim_datum_data_get(&datum) == NULL && exim_datum_size_get(&datum) == 0);
    exim_datum_free(&datum); /* freeing an empty datum does nothing */
    exim_datum_data_set(&datum, malloc(8));
    exim_datum_size_set(&datum, 8);
    CHECK(exim_datum_size_get(&datum) == 8);
    exim_datum_free(&datum);
    CHECK(exim_datum_data_get(&datum) == NULL);
    exim_datum_free(&datum); /* and twice is harmless */

    /* Names: the basename, capitals made small; anything hintsd cannot name fails to open. */
    open_hints open;
    errno = 0;
    CHECK(!hints_db_open(&open, "once.db", O_RDONLY) && errno == EINVAL);
    errno = 0;
    CHECK(!hints_db_open(&open, "", O_RDWR) && errno == EINVAL);
    CHECK(!hints_db_open(&open, "a-name-longer-than-sixty-four-characters-which-hintsd-cannot-hold", O_RDONLY));
    EXIM_DB *bare = exim_dbopen_multi__(US "retry", US ".", O_RDONLY, 0); /* a name without a directory */
    CHECK(bare != NULL && strcmp(bare->name, "retry") == 0);
    exim_dbclose_multi__(bare);
}

/* A ratelimit update: open(O_RDWR|O_CREAT), read, write, close, three times over. */
static void test_read_write_cycles(void) {
    const char *key = "1h/per_rcpt/192.0.2.1";
    for (int i = 1; i <= 3; i++) {
        open_hints open;
        CHECK(hints_db_open(&open, "ratelimit", O_RDWR | O_CREAT));
        if (open.db == NULL) {
            return;
        }
        int length = 0;
        rate_record *old = hints_db_read(&open, key, &length);
        CHECK(i == 1 ? old == NULL : old != NULL && length == (int)sizeof(rate_record) && old->rate == i - 1);
        rate_record record = {time(NULL), 250000, (double)i};
        CHECK(hints_db_write(&open, key, &record, sizeof record) == 0);
        free(old);
        hints_db_close(&open);
    }

    /* In hintsd the key has no NUL: it is the key hintsd's own ratelimit uses. */
    rate_record stored;
    size_t len = 0;
    CHECK(hints_get(outside, "ratelimit", key, strlen(key), &stored, sizeof stored, &len, NULL, NULL) == HINTS_OK);
    CHECK(len == sizeof stored && stored.rate == 3.0 && stored.time_usec == 250000);
    CHECK(hints_get(outside, "ratelimit", key, strlen(key) + 1, &stored, sizeof stored, &len, NULL, NULL) ==
          HINTS_NOT_FOUND);
}

/* What hintsd's own operations store, Exim reads under its own keys, and the other way round. */
static void test_shared_with_hintsd(void) {
    double rate = 0;
    int over = 1;
    CHECK(hints_ratelimit(outside, "100 / 1h / per_rcpt / 192.0.2.9", (int64_t)time(NULL), 0, &rate, &over) ==
          HINTS_OK);
    CHECK(over == 0 && rate == 1.0);
    open_hints open;
    CHECK(hints_db_open(&open, "ratelimit", O_RDONLY));
    if (open.db != NULL) {
        int length = 0;
        rate_record *record = hints_db_read(&open, "1h/per_rcpt/192.0.2.9", &length);
        CHECK(record != NULL && length == (int)sizeof(rate_record) && record->rate == rate);
        free(record);
        hints_db_close(&open);
    }

    CHECK(hints_put(outside, "retry", "R:example.net", 13, "retry-record", 12, NULL, NULL) == HINTS_OK);
    CHECK(hints_db_open(&open, "retry", O_RDONLY));
    if (open.db != NULL) {
        int length = 0;
        char *value = hints_db_read(&open, "R:example.net", &length);
        CHECK(value != NULL && length == 12 && memcmp(value, "retry-record", 12) == 0);
        free(value);
        hints_db_close(&open);
    }
}

/* A retry lookup: open(O_RDONLY), read what is there and what is not, close. */
static void test_read_only(void) {
    open_hints open;
    CHECK(hints_db_open(&open, "retry", O_RDONLY));
    if (open.db == NULL) {
        return;
    }
    int length = -1;
    char *value = hints_db_read(&open, "R:example.net", &length);
    CHECK(value != NULL && length == 12);
    free(value);
    CHECK(hints_db_read(&open, "T:mx.example.net:192.0.2.7", NULL) == NULL);
    CHECK(hints_db_read(&open, "", NULL) == NULL); /* an empty key is never there */
    /* A read-only handle does not write. */
    CHECK(hints_db_write(&open, "R:example.org", "x", 1) == -1);
    CHECK(hints_db_delete(&open, "R:example.net") == -1);
    hints_db_close(&open);
    CHECK(hints_get(outside, "retry", "R:example.org", 13, NULL, 0, NULL, NULL, NULL) == HINTS_NOT_FOUND);
}

static void test_delete(void) {
    open_hints open;
    CHECK(hints_db_open(&open, "misc", O_RDWR | O_CREAT));
    if (open.db == NULL) {
        return;
    }
    CHECK(hints_db_write(&open, "host-serialize-192.0.2.1", "s", 1) == 0);
    CHECK(hints_db_delete(&open, "host-serialize-192.0.2.1") == 0);
    CHECK(hints_db_read(&open, "host-serialize-192.0.2.1", NULL) == NULL);
    CHECK(hints_db_delete(&open, "host-serialize-192.0.2.1") != 0); /* nothing left to delete */
    CHECK(hints_db_write(&open, "", "s", 1) == -1);                  /* an empty key is refused */
    hints_db_close(&open);
}

/* A non-overwriting write: OK for a new key, DUP (and no change) for one that is there. */
static void test_put_if_absent(void) {
    open_hints open;
    CHECK(hints_db_open(&open, "misc", O_RDWR | O_CREAT));
    if (open.db == NULL) {
        return;
    }
    CHECK(hints_db_write_new(&open, "putb-key", "first", 5) == EXIM_DBPUTB_OK);
    CHECK(hints_db_write_new(&open, "putb-key", "second", 6) == EXIM_DBPUTB_DUP);
    int length = 0;
    char *value = hints_db_read(&open, "putb-key", &length);
    CHECK(value != NULL && length == 5 && memcmp(value, "first", 5) == 0);
    free(value);
    CHECK(hints_db_write_new(&open, "putb-other", "new", 3) == EXIM_DBPUTB_OK);
    hints_db_close(&open);

    CHECK(hints_db_open(&open, "misc", O_RDONLY));
    if (open.db != NULL) {
        CHECK(hints_db_write_new(&open, "putb-third", "x", 1) == -1); /* not on a read-only handle */
        hints_db_close(&open);
    }
}

/* exim_dumpdb's scan (reading each record between scan calls) and exim_tidydb's (collecting the
 * keys, then deleting), over more keys than the library fetches in one page. */
static void test_scan(void) {
    enum { KEYS = 600 };
    char key[64];
    open_hints open;
    CHECK(hints_db_open(&open, "wait-remote_smtp", O_RDWR | O_CREAT));
    if (open.db == NULL) {
        return;
    }
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "host-%03d.example.net", i);
        CHECK(hints_db_write(&open, key, key, (int)strlen(key)) == 0);
    }
    hints_db_close(&open);

    /* The dump: a read-only open, each key NUL-terminated, in key order, each record read. */
    CHECK(hints_db_open(&open, "wait-remote_smtp", O_RDONLY));
    if (open.db == NULL) {
        return;
    }
    EXIM_CURSOR *cursor = NULL;
    int seen = 0, in_order = 1, readable = 0;
    char previous[64] = "";
    for (uschar *k = hints_db_scan(&open, TRUE, &cursor); k != NULL; k = hints_db_scan(&open, FALSE, &cursor)) {
        char copy[64];
        snprintf(copy, sizeof copy, "%s", (char *)k);
        snprintf(key, sizeof key, "host-%03d.example.net", seen);
        in_order &= strcmp(copy, key) == 0 && strcmp(previous, copy) < 0;
        int length = 0;
        char *value = hints_db_read(&open, copy, &length);
        readable += value != NULL && length == (int)strlen(copy) && memcmp(value, copy, (size_t)length) == 0;
        free(value);
        snprintf(previous, sizeof previous, "%s", copy);
        seen++;
    }
    CHECK(seen == KEYS);
    CHECK(in_order);
    CHECK(readable == KEYS);

    /* The key datum carries Exim's NUL: its size is strlen + 1. */
    cursor = exim_dbcreate_cursor(open.db);
    EXIM_DATUM key_datum, value_datum;
    exim_datum_init(&key_datum);
    exim_datum_init(&value_datum);
    CHECK(exim_dbscan(open.db, &key_datum, &value_datum, TRUE, cursor));
    CHECK(exim_datum_size_get(&key_datum) == strlen("host-000.example.net") + 1);
    CHECK(exim_datum_data_get(&key_datum)[exim_datum_size_get(&key_datum) - 1] == '\0');
    CHECK(exim_datum_data_get(&value_datum) == NULL); /* the value is read with exim_dbget */
    CHECK(exim_dbscan(open.db, &key_datum, &value_datum, FALSE, cursor));
    CHECK(strcmp((char *)exim_datum_data_get(&key_datum), "host-001.example.net") == 0);
    /* Left undeleted on purpose: the close frees a cursor Exim abandoned. */
    hints_db_close(&open);

    /* The tidy: a read-write open, the keys collected first, then every odd one deleted. */
    CHECK(hints_db_open(&open, "wait-remote_smtp", O_RDWR | O_CREAT));
    if (open.db == NULL) {
        return;
    }
    char **keys = calloc(KEYS, sizeof *keys);
    int collected = 0;
    for (uschar *k = hints_db_scan(&open, TRUE, &cursor); k != NULL && collected < KEYS;
         k = hints_db_scan(&open, FALSE, &cursor)) {
        keys[collected++] = strdup((char *)k);
    }
    CHECK(collected == KEYS);
    int deleted = 0;
    for (int i = 1; i < collected; i += 2) {
        deleted += hints_db_delete(&open, keys[i]) == 0;
    }
    CHECK(deleted == KEYS / 2);
    for (int i = 0; i < collected; i++) {
        free(keys[i]);
    }
    free(keys);
    hints_db_close(&open);

    CHECK(hints_db_open(&open, "wait-remote_smtp", O_RDONLY));
    if (open.db != NULL) {
        int left = 0;
        for (uschar *k = hints_db_scan(&open, TRUE, &cursor); k != NULL; k = hints_db_scan(&open, FALSE, &cursor)) {
            left++;
        }
        CHECK(left == KEYS / 2);
        hints_db_close(&open);
    }

    /* A database with nothing in it scans to nothing at once. */
    CHECK(hints_db_open(&open, "wait-empty", O_RDONLY));
    if (open.db != NULL) {
        CHECK(hints_db_scan(&open, TRUE, &cursor) == NULL);
        hints_db_close(&open);
    }
}

/* Exim's database for a transport named with capitals is hintsd's with small letters. */
static void test_names(void) {
    open_hints open;
    CHECK(hints_db_open(&open, "wait-Remote_SMTP", O_RDWR | O_CREAT));
    if (open.db == NULL) {
        return;
    }
    CHECK(hints_db_write(&open, "mx.example.org", "ids", 3) == 0);
    hints_db_close(&open);
    CHECK(hints_get(outside, "wait-remote_smtp", "mx.example.org", 14, NULL, 0, NULL, NULL, NULL) ==
          HINTS_BUFFER_TOO_SMALL);
}

/*
 * A transaction on a "multi" handle holds the database: a reader in another process, which has
 * said it is about to read, gets the value written at the end of the transaction, not the one
 * in place when it asked.
 */
static void test_transaction(void) {
    open_hints open;
    open.readonly = FALSE;
    open.db = exim_dbopen_multi__(US "/spool/db/misc", US "/spool/db", O_RDWR | O_CREAT, 0640);
    CHECK(open.db != NULL);
    if (open.db == NULL) {
        return;
    }
    CHECK(hints_db_write(&open, "txn-key", "before", 6) == 0); /* outside a transaction: applied at once */
    CHECK(exim_dbtransaction_start(open.db));
    CHECK(hints_db_write(&open, "txn-key", "during", 6) == 0);

    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        open_hints reader;
        if (!hints_db_open(&reader, "misc", O_RDONLY)) {
            _exit(2);
        }
        (void)!write(ready[1], "r", 1);
        int length = 0;
        char *value = hints_db_read(&reader, "txn-key", &length);
        int ok = value != NULL && length == 5 && memcmp(value, "after", 5) == 0;
        hints_db_close(&reader);
        _exit(ok ? 0 : 1);
    }
    close(ready[1]);
    char byte;
    CHECK(read(ready[0], &byte, 1) == 1);
    close(ready[0]);
    sleep_ms(300); /* the reader's request is waiting at the daemon by now */
    CHECK(hints_db_write(&open, "txn-key", "after", 5) == 0);
    exim_dbtransaction_commit(open.db);
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* Committed: another client goes ahead (within its 5 s timeout, where the 30 s lease would
     * stop it); a second transaction starts and ends. */
    CHECK(hints_put(outside, "misc", "txn-other", 9, "x", 1, NULL, NULL) == HINTS_OK);
    CHECK(exim_dbtransaction_start(open.db));
    exim_dbtransaction_commit(open.db);
    /* A transaction left open is ended by the close. */
    CHECK(exim_dbtransaction_start(open.db));
    exim_dbclose_multi__(open.db);
    CHECK(hints_put(outside, "misc", "txn-other", 9, "y", 1, NULL, NULL) == HINTS_OK);
}

/* A read-write open held longer than its lease keeps the database: each call past half the
 * lease renews it, so a writer in another process gets in only after the close. The lease is
 * cut to 2 s here (30 s by default) to keep the check short. */
static void test_lease_renewal(void) {
    open_hints open;
    hintsd_exim_process.lease_ms = 2000;
    CHECK(hints_db_open(&open, "misc", O_RDWR | O_CREAT));
    if (open.db == NULL) {
        hintsd_exim_process.lease_ms = 0;
        return;
    }
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        (void)!write(ready[1], "w", 1);
        open_hints writer;
        if (!hints_db_open(&writer, "misc", O_RDWR | O_CREAT)) {
            _exit(2);
        }
        int ok = hints_db_write(&writer, "lease-key", "child", 5) == 0;
        hints_db_close(&writer);
        _exit(ok ? 0 : 1);
    }
    close(ready[1]);
    char byte;
    CHECK(read(ready[0], &byte, 1) == 1);
    close(ready[0]);
    /* 3.3 s in all, well past the 2 s lease, with a call every 1.1 s. */
    for (int i = 0; i < 3; i++) {
        sleep_ms(1100);
        CHECK(hints_db_write(&open, "lease-key", "parent", 6) == 0);
    }
    hints_db_close(&open);
    hintsd_exim_process.lease_ms = 0;
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char value[16];
    size_t len = 0;
    CHECK(hints_get(outside, "misc", "lease-key", 9, value, sizeof value, &len, NULL, NULL) == HINTS_OK);
    CHECK(len == 5 && memcmp(value, "child", 5) == 0); /* the child wrote last: it waited */
}

/* Exim opens and closes a database for every access: none of that makes a new connection. A
 * serialize slot, which lives as long as the connection that took it, shows it. */
static void test_one_connection(void) {
    hints_t *process = hintsd_exim_client();
    int held = 0;
    CHECK(hints_serialize_take(process, "misc", "connection-probe", 16, 1, &held, NULL) == HINTS_OK && held == 1);
    for (int i = 0; i < 100; i++) {
        open_hints open;
        if (hints_db_open(&open, i % 2 ? "retry" : "callout", i % 2 ? O_RDONLY : O_RDWR | O_CREAT)) {
            free(hints_db_read(&open, "R:example.net", NULL));
            hints_db_close(&open);
        }
    }
    held = 1;
    CHECK(hints_serialize_take(outside, "misc", "connection-probe", 16, 1, &held, NULL) == HINTS_OK && held == 0);
    CHECK(hints_serialize_release(process, "misc", "connection-probe", 16, NULL) == HINTS_OK);
}

/* Two processes each add 1 to one counter 1000 times, each time in a read-write open, read,
 * write, close: hintsd's session keeps every read-modify-write whole, as Exim's lockfile does. */
static void test_concurrent_increments(void) {
    enum { WORKERS = 2, INCREMENTS = 1000 };
    pid_t pids[WORKERS];
    for (int w = 0; w < WORKERS; w++) {
        pids[w] = fork();
        if (pids[w] == 0) {
            int failures = 0;
            for (int i = 0; i < INCREMENTS; i++) {
                failures += !increment("ratelimit", "increment-counter");
            }
            _exit(failures > 100 ? 100 : failures);
        }
    }
    for (int w = 0; w < WORKERS; w++) {
        int status = 0;
        CHECK(pids[w] > 0 && waitpid(pids[w], &status, 0) == pids[w]);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    int count = read_count("ratelimit", "increment-counter");
    CHECK(count == WORKERS * INCREMENTS);
    if (count != WORKERS * INCREMENTS) {
        printf("  (the counter ended at %d)\n", count);
    }
}

/* Nothing is made in the spool directory: no database file, no lockfile. */
static void test_no_files(void) {
    char dir[512];
    struct stat st;
    snprintf(dir, sizeof dir, "%s/db", spool);
    CHECK(stat(dir, &st) != 0 && errno == ENOENT);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: HINTSD_SOCKET=SOCKET %s SPOOL_DIRECTORY\n", argv[0]);
        return 2;
    }
    spool = argv[1];
    const char *debug = getenv("HINTSD_HARNESS_DEBUG");
    shim_debug = debug != NULL && *debug != '\0' ? D_hints_lookup : 0;
    setvbuf(stdout, NULL, _IOLBF, 0);

    test_daemon_unavailable(); /* first: this process has no handle yet, so the child makes its own */

    outside = hints_open(NULL, 5000);
    if (outside == NULL || hints_ping(outside) != HINTS_OK) {
        printf("FAIL: no daemon at $HINTSD_SOCKET: %s\n", hints_last_error(outside));
        return 1;
    }
    test_interface();
    test_read_write_cycles();
    test_shared_with_hintsd();
    test_read_only();
    test_delete();
    test_put_if_absent();
    test_scan();
    test_names();
    test_transaction();
    test_lease_renewal();
    test_one_connection();
    test_concurrent_increments();
    test_a_lost_session_fails_the_writes_under_it();
    test_no_files();
    hints_close(outside);

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
