/*
 * hints_hintsd.h: an Exim hints-database backend that keeps every hints database in hintsd.
 *
 * Exim chooses one backend for its hints databases at build time (src/src/hintsdb.h includes
 * one of src/src/hintsdb/hints_*.h). This file is such a backend, written on top of hintsd's C
 * library (hints_client.h, libhints_client): no database files and no lockfiles, one
 * connection per Exim process, and hintsd's exclusive session in place of the lockfile.
 * contrib/exim/README.md says how to build Exim with it and what it cannot do.
 *
 * It needs from Exim only what every backend gets from exim.h: uschar, BOOL, TRUE/FALSE, the
 * US/CS casts, DEBUG() with D_hints_lookup, and debug_printf_indent(). test/exim_shim.h
 * defines those for the test harness.
 *
 * How Exim's calls map onto hintsd:
 *
 * - Database: the basename of the path Exim passes (".../db/retry" is hintsd's "retry"), with
 *   ASCII capitals made small ("wait-Remote_SMTP" is "wait-remote_smtp"), since hintsd's names
 *   are 1-64 characters of a-z, 0-9, '_' and '-'. Any other name fails to open (EINVAL).
 * - Keys: Exim's keys are C strings stored with their NUL (klen = strlen + 1). One trailing NUL
 *   is dropped on the way in and one added back on the way out of a scan, so the keys in hintsd
 *   are the ones its own operations use (a ratelimit record written by hintsd's "ratelimit" is
 *   the one Exim reads, and the other way round). A key that is empty without its NUL is
 *   refused (no record, or a failed write).
 * - Locking: exim_lockfile_needed() is FALSE, so Exim makes no lockfile. A read-write open
 *   (exim_dbopen__ with O_RDWR or O_WRONLY) takes hintsd's exclusive session on the database
 *   for this process's connection, and the close gives it back: other processes' requests to
 *   that database wait meanwhile, as they would on Exim's write lock, so a read-modify-write
 *   between open and close keeps its meaning. A transaction (exim_dbtransaction_start/commit on
 *   a handle from exim_dbopen_multi__) takes and gives back the same session. Read-only opens
 *   take no session: each hintsd request is atomic on its own.
 * - Lease: a session is taken for HINTSD_EXIM_LEASE_MS and renewed by the next call made on it
 *   once half of that has gone by, so a long holder (exim_tidydb) keeps it while it works; a
 *   process that dies or hangs up frees it at once, one that hangs holding it frees it at the
 *   lease's end.
 * - Connection: one hints_t per process, made on first use and kept for the process's life:
 *   Exim opens and closes a database for every access, and none of that connects. A forked
 *   child goes on with its parent's handle and the library gives it a connection of its own; it
 *   holds none of its parent's sessions.
 * - Memory: a value from exim_dbget is malloc'd (by hints_get_alloc) and freed by
 *   exim_datum_free. A key from exim_dbscan belongs to the cursor (valid until
 *   exim_dbdelete_cursor or the close): do not exim_datum_free it. A scan works on a snapshot
 *   of the database's keys, taken by its first call (the library fetches them in pages), so the
 *   caller may read, write and delete while it scans.
 * - Failures: an open that cannot take its session (hintsd down, or another holder past
 *   HINTSD_EXIM_LOCK_WAIT_MS) returns NULL with errno set (EAGAIN for "unavailable"), which Exim
 *   treats as it treats a hints file it cannot lock; a read that fails is "no record"; a write
 *   that fails returns -1. Every failure is shown under Exim's -d+hints_lookup with hintsd's
 *   own message.
 *
 * Build-time settings (define before this file is included, e.g. in CFLAGS):
 *   HINTSD_EXIM_SOCKET        the daemon's socket, a string literal; unset: the library's
 *                             default rule ($HINTSD_SOCKET, $XDG_RUNTIME_DIR/hintsd/hintsd.sock,
 *                             /run/hintsd/hintsd.sock for root, /tmp/hintsd-<euid>/... else)
 *   HINTSD_EXIM_TIMEOUT_MS    the longest any call may take (default 1000)
 *   HINTSD_EXIM_LOCK_WAIT_MS  how long taking a session may wait for another holder (5000)
 *   HINTSD_EXIM_LEASE_MS      a session's lease, 1 to 60000 (30000)
 *   HINTSD_EXIM_SESSIONS_MAX  databases one process may hold sessions on at once (16)
 */
#ifndef HINTS_HINTSD_H
#define HINTS_HINTSD_H

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <hints_client.h>

#ifndef HINTSD_EXIM_TIMEOUT_MS
#define HINTSD_EXIM_TIMEOUT_MS 1000
#endif
#ifndef HINTSD_EXIM_LOCK_WAIT_MS
#define HINTSD_EXIM_LOCK_WAIT_MS 5000
#endif
#ifndef HINTSD_EXIM_LEASE_MS
#define HINTSD_EXIM_LEASE_MS 30000
#endif
#ifndef HINTSD_EXIM_SESSIONS_MAX
#define HINTSD_EXIM_SESSIONS_MAX 16
#endif

/* The longest hintsd database name. */
#define HINTSD_EXIM_NAME_MAX 64

/* ---- the types Exim sees -------------------------------------------------------------------- */

/* A key or a value: bytes and their length. */
typedef struct {
    uschar *data;
    unsigned len;
} hintsd_datum;

typedef struct hintsd_cursor hintsd_cursor;

/* An open hints database: which one, how it was opened, and what this handle holds. */
typedef struct {
    char name[HINTSD_EXIM_NAME_MAX + 1];
    BOOL writable;
    pid_t pid;             /* the process that opened it: a forked child holds nothing by it */
    unsigned levels;       /* session levels held through this handle: its open, its transactions */
    hintsd_cursor *scans;  /* cursors not yet deleted, freed at the latest by the close */
} hintsd_db;

/* A scan: a snapshot of the database's keys, each with Exim's NUL put back, handed out in order. */
struct hintsd_cursor {
    hintsd_db *db;
    hintsd_cursor *next_scan;
    hintsd_datum *keys;
    size_t count;
    size_t capacity;
    size_t next;
    BOOL loaded;
    BOOL out_of_memory;
};

#define EXIM_DB hintsd_db
#define EXIM_CURSOR hintsd_cursor
#define EXIM_DATUM hintsd_datum
#define EXIM_DBTYPE "hintsd"

/* What exim_dbputb answers; any failure is -1. */
#define EXIM_DBPUTB_OK 0
#define EXIM_DBPUTB_DUP 1

/* The longest error text Exim keeps in a retry record. */
#define EXIM_DB_RLIMIT 150

/* ---- one connection and its sessions per process -------------------------------------------- */

/* A database this process holds hintsd's exclusive session on. */
typedef struct {
    char name[HINTSD_EXIM_NAME_MAX + 1];
    unsigned depth;     /* handles' open and transaction levels holding it; 0: slot free */
    long long since_ms; /* when the lease was last taken or renewed (hintsd_now_ms) */
    uint64_t conn_id;   /* the connection that holds it (hints_connection_id) */
} hintsd_session;

typedef struct {
    hints_t *client;                                 /* made on first use, kept for good */
    pid_t pid;                                       /* whose sessions these are */
    unsigned lease_ms;                               /* 0: HINTSD_EXIM_LEASE_MS (a test shortens it) */
    hintsd_session sessions[HINTSD_EXIM_SESSIONS_MAX];
} hintsd_process;

/*
 * Every file of Exim that includes this header must share one state, so it is a weak symbol
 * (the linker keeps one copy). A compiler without weak symbols gets one per file: still
 * correct, with a connection per file that uses the hints databases.
 */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((weak)) hintsd_process hintsd_exim_process = {0};
#else
static hintsd_process hintsd_exim_process;
#endif

/* This process's state; a forked child starts with no sessions (its connection holds none). */
static inline hintsd_process *hintsd_state(void) {
    pid_t me = getpid();
    if (hintsd_exim_process.pid != me) {
        memset(hintsd_exim_process.sessions, 0, sizeof hintsd_exim_process.sessions);
        hintsd_exim_process.pid = me;
    }
    return &hintsd_exim_process;
}

/* The process's handle, made on first use (hints_open does not connect). NULL only if the
 * library failed inside. */
static inline hints_t *hintsd_exim_client(void) {
    hintsd_process *state = hintsd_state();
    if (state->client == NULL) {
#ifdef HINTSD_EXIM_SOCKET
        state->client = hints_open(HINTSD_EXIM_SOCKET, HINTSD_EXIM_TIMEOUT_MS);
#else
        state->client = hints_open(NULL, HINTSD_EXIM_TIMEOUT_MS);
#endif
    }
    return state->client;
}

/* The lease a session is taken for. */
static inline unsigned hintsd_lease_ms(void) {
    return hintsd_exim_process.lease_ms != 0 ? hintsd_exim_process.lease_ms : HINTSD_EXIM_LEASE_MS;
}

/* A clock for leases: monotonic where the system has one. */
static inline long long hintsd_now_ms(void) {
#ifdef CLOCK_MONOTONIC
    struct timespec now;
    if (clock_gettime(CLOCK_MONOTONIC, &now) == 0) {
        return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    }
#endif
    return (long long)time(NULL) * 1000;
}

/* The errno an open gives Exim for a hints_client code. */
static inline int hintsd_errno_of(int code) {
    switch (code) {
    case HINTS_UNAVAILABLE:
    case HINTS_DAEMON_ERROR:
        return EAGAIN;
    case HINTS_REFUSED:
        return EACCES;
    case HINTS_BAD_REQUEST:
    case HINTS_INVALID:
        return EINVAL;
    default:
        return EIO;
    }
}

/* Shows a failed call under -d+hints_lookup. */
static inline void hintsd_debug_failure(const char *call, const char *db, int code) {
    DEBUG(D_hints_lookup)
    debug_printf_indent("hintsd: %s on %s: %s: %s\n", call, db, hints_strerror(code),
                        hints_last_error(hintsd_exim_process.client));
}

/* The session slot for db, or a free one made its own when make is TRUE; NULL if none. */
static inline hintsd_session *hintsd_session_of(const char *db, BOOL make) {
    hintsd_process *state = hintsd_state();
    hintsd_session *free_slot = NULL;
    for (int i = 0; i < HINTSD_EXIM_SESSIONS_MAX; i++) {
        hintsd_session *slot = &state->sessions[i];
        if (slot->depth > 0 && strcmp(slot->name, db) == 0) {
            return slot;
        }
        if (slot->depth == 0 && free_slot == NULL) {
            free_slot = slot;
        }
    }
    if (make && free_slot != NULL) {
        strcpy(free_slot->name, db);
    }
    return make ? free_slot : NULL;
}

/* Asks hintsd for the session on db (or renews it), waiting up to HINTSD_EXIM_LOCK_WAIT_MS. */
static inline int hintsd_lock(hints_t *client, const char *db) {
    hints_set_timeout(client, HINTSD_EXIM_LOCK_WAIT_MS);
    int code = hints_lock(client, db, hintsd_lease_ms());
    if (code != HINTS_OK) {
        hintsd_debug_failure("taking the exclusive session", db, code); /* before the next call clears the message */
    }
    hints_set_timeout(client, HINTSD_EXIM_TIMEOUT_MS);
    return code;
}

/* A handle opened before a fork holds nothing in the child. */
static inline void hintsd_adopt(hintsd_db *db) {
    pid_t me = getpid();
    if (db->pid != me) {
        db->pid = me;
        db->levels = 0;
    }
}

/* One more session level for db, taking the session if the process does not hold it yet.
 * FALSE, with errno set, if it could not be taken. */
static inline BOOL hintsd_hold(hintsd_db *db) {
    hints_t *client = hintsd_exim_client();
    hintsd_adopt(db);
    hintsd_session *slot = hintsd_session_of(db->name, TRUE);
    if (client == NULL || slot == NULL) {
        errno = client == NULL ? ENOMEM : EAGAIN;
        return FALSE;
    }
    if (slot->depth == 0) {
        int code = hintsd_lock(client, db->name);
        if (code != HINTS_OK) {
            errno = hintsd_errno_of(code);
            return FALSE;
        }
        slot->since_ms = hintsd_now_ms();
        slot->conn_id = hints_connection_id(client);
    }
    slot->depth++;
    db->levels++;
    return TRUE;
}

/* Gives back one (or, for all, every) session level db holds; the last one in the process
 * ends the session. */
static inline void hintsd_release(hintsd_db *db, BOOL all) {
    hintsd_adopt(db);
    unsigned levels = all ? db->levels : (db->levels > 0 ? 1 : 0);
    if (levels == 0) {
        return;
    }
    db->levels -= levels;
    hintsd_session *slot = hintsd_session_of(db->name, FALSE);
    if (slot == NULL) {
        return;
    }
    slot->depth -= levels < slot->depth ? levels : slot->depth;
    if (slot->depth == 0) {
        int held = 0;
        int code = hints_unlock(hintsd_exim_client(), db->name, &held);
        if (code != HINTS_OK) {
            hintsd_debug_failure("ending the exclusive session", db->name, code);
        } else if (!held) {
            DEBUG(D_hints_lookup)
            debug_printf_indent("hintsd: the session on %s had already ended (lease or reconnection)\n", db->name);
        }
    }
}

/* Before a call on db: FALSE (errno EAGAIN) if db holds a session that its connection has lost
 * (a timed-out call drops the connection, and hintsd ends its sessions with it), so nothing
 * is read or written as if under Exim's lock when it is not; otherwise renews the session
 * once half of the lease has gone by, and TRUE. */
static inline BOOL hintsd_keep(hintsd_db *db) {
    hintsd_adopt(db);
    if (db->levels == 0) {
        return TRUE;
    }
    hints_t *client = hintsd_exim_client();
    hintsd_session *slot = hintsd_session_of(db->name, FALSE);
    if (slot == NULL || client == NULL || hints_connection_id(client) != slot->conn_id) {
        DEBUG(D_hints_lookup)
        debug_printf_indent("hintsd: the session on %s was lost with its connection\n", db->name);
        errno = EAGAIN;
        return FALSE;
    }
    long long now = hintsd_now_ms();
    if (now - slot->since_ms >= hintsd_lease_ms() / 2 && hintsd_lock(client, db->name) == HINTS_OK &&
        hints_connection_id(client) == slot->conn_id) {
        slot->since_ms = now;
    }
    return TRUE;
}

/* hintsd's name for the database at path: its basename, capitals made small. */
static inline BOOL hintsd_name_of(const uschar *path, char *name) {
    const char *base = strrchr(CS path, '/');
    base = base != NULL ? base + 1 : CS path;
    size_t len = strlen(base);
    if (len == 0 || len > HINTSD_EXIM_NAME_MAX) {
        return FALSE;
    }
    for (size_t i = 0; i < len; i++) {
        char c = base[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            return FALSE;
        }
        name[i] = c;
    }
    name[len] = '\0';
    return TRUE;
}

/* hintsd's key for Exim's: without one trailing NUL. FALSE if nothing is left. */
static inline BOOL hintsd_key_of(const hintsd_datum *key, const void **bytes, size_t *len) {
    if (key == NULL || key->data == NULL) {
        return FALSE;
    }
    *bytes = key->data;
    *len = key->len;
    if (*len > 0 && key->data[*len - 1] == '\0') {
        (*len)--;
    }
    return *len > 0;
}

/* ---- the backend interface ------------------------------------------------------------------ */

/* No lockfile: hintsd's exclusive session does its work. */
static inline BOOL exim_lockfile_needed(void) {
    return FALSE;
}

/* Opens path's database without taking a session (reads, and transactions later). Nothing is
 * sent to hintsd. NULL with errno set for a name hintsd cannot have. */
static inline EXIM_DB *exim_dbopen_multi__(const uschar *name, const uschar *dirname, int flags, unsigned mode) {
    (void)dirname;
    (void)mode;
    hintsd_db *db = calloc(1, sizeof *db);
    if (db == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    if (!hintsd_name_of(name, db->name)) {
        DEBUG(D_hints_lookup)
        debug_printf_indent("hintsd: no hintsd database can be named after %s\n", CS name);
        free(db);
        errno = EINVAL;
        return NULL;
    }
    if (hintsd_exim_client() == NULL) {
        free(db);
        errno = ENOMEM;
        return NULL;
    }
    db->writable = (flags & O_ACCMODE) != O_RDONLY;
    db->pid = getpid();
    return db;
}

/* Opens path's database; a read-write open also takes hintsd's exclusive session on it until
 * the close (Exim's write lock). NULL with errno set if the session cannot be had. */
static inline EXIM_DB *exim_dbopen__(const uschar *name, const uschar *dirname, int flags, unsigned mode) {
    hintsd_db *db = exim_dbopen_multi__(name, dirname, flags, mode);
    if (db != NULL && db->writable && !hintsd_hold(db)) {
        int saved = errno;
        free(db);
        errno = saved;
        return NULL;
    }
    return db;
}

/* Starts a transaction: takes the exclusive session (nested in one already held). */
static inline BOOL exim_dbtransaction_start(EXIM_DB *db) {
    return db != NULL && hintsd_hold(db);
}

/* Ends a transaction: gives back what its start took. Each write was applied as it was made. */
static inline void exim_dbtransaction_commit(EXIM_DB *db) {
    if (db != NULL) {
        hintsd_release(db, FALSE);
    }
}

static inline void hintsd_cursor_free(hintsd_cursor *cursor) {
    for (size_t i = 0; i < cursor->count; i++) {
        free(cursor->keys[i].data);
    }
    free(cursor->keys);
    free(cursor);
}

/* Closes a handle: ends whatever session it still holds and frees its scans. */
static inline void exim_dbclose_multi__(EXIM_DB *db) {
    if (db == NULL) {
        return;
    }
    hintsd_release(db, TRUE);
    while (db->scans != NULL) {
        hintsd_cursor *cursor = db->scans;
        db->scans = cursor->next_scan;
        hintsd_cursor_free(cursor);
    }
    free(db);
}

static inline void exim_dbclose__(EXIM_DB *db) {
    exim_dbclose_multi__(db);
}

/* Reads key's record into res (malloc'd: free it with exim_datum_free). FALSE when there is
 * none, or hintsd could not say. */
static inline BOOL exim_dbget(EXIM_DB *db, EXIM_DATUM *key, EXIM_DATUM *res) {
    const void *bytes;
    size_t len;
    void *value = NULL;
    size_t value_len = 0;
    res->data = NULL;
    res->len = 0;
    if (db == NULL || !hintsd_key_of(key, &bytes, &len)) {
        return FALSE;
    }
    if (!hintsd_keep(db)) {
        return FALSE;
    }
    int code = hints_get_alloc(hintsd_exim_client(), db->name, bytes, len, &value, &value_len);
    if (code != HINTS_OK) {
        if (code != HINTS_NOT_FOUND) {
            hintsd_debug_failure("get", db->name, code);
        }
        return FALSE;
    }
    res->data = value;
    res->len = (unsigned)value_len; /* at most 256 KiB */
    return TRUE;
}

/* Stores data under key, replacing any record. 0, or -1 on failure. */
static inline int exim_dbput(EXIM_DB *db, EXIM_DATUM *key, EXIM_DATUM *data) {
    const void *bytes;
    size_t len;
    if (db == NULL || !db->writable || !hintsd_key_of(key, &bytes, &len)) {
        return -1;
    }
    if (!hintsd_keep(db)) {
        return -1;
    }
    int code = hints_put(hintsd_exim_client(), db->name, bytes, len, data->data, data->len, NULL, NULL);
    if (code != HINTS_OK) {
        hintsd_debug_failure("put", db->name, code);
        return -1;
    }
    return 0;
}

/* Stores data under key only if there is no record: EXIM_DBPUTB_OK, EXIM_DBPUTB_DUP when there
 * was one (left as it was), or -1 on failure. */
static inline int exim_dbputb(EXIM_DB *db, EXIM_DATUM *key, EXIM_DATUM *data) {
    const void *bytes;
    size_t len;
    int stored = 0;
    if (db == NULL || !db->writable || !hintsd_key_of(key, &bytes, &len)) {
        return -1;
    }
    if (!hintsd_keep(db)) {
        return -1;
    }
    int code = hints_put_if_absent(hintsd_exim_client(), db->name, bytes, len, data->data, data->len, &stored);
    if (code != HINTS_OK) {
        hintsd_debug_failure("put if absent", db->name, code);
        return -1;
    }
    return stored ? EXIM_DBPUTB_OK : EXIM_DBPUTB_DUP;
}

/* Deletes key's record: 0, or -1 when there was none or on failure. */
static inline int exim_dbdel(EXIM_DB *db, EXIM_DATUM *key) {
    const void *bytes;
    size_t len;
    int existed = 0;
    if (db == NULL || !db->writable || !hintsd_key_of(key, &bytes, &len)) {
        return -1;
    }
    if (!hintsd_keep(db)) {
        return -1;
    }
    int code = hints_delete(hintsd_exim_client(), db->name, bytes, len, &existed);
    if (code != HINTS_OK) {
        hintsd_debug_failure("delete", db->name, code);
        return -1;
    }
    return existed ? 0 : -1;
}

/* A new scan of db; its keys are fetched by the first exim_dbscan. */
static inline EXIM_CURSOR *exim_dbcreate_cursor(EXIM_DB *db) {
    if (db == NULL) {
        return NULL;
    }
    hintsd_cursor *cursor = calloc(1, sizeof *cursor);
    if (cursor != NULL) {
        cursor->db = db;
        cursor->next_scan = db->scans;
        db->scans = cursor;
    }
    return cursor;
}

/* hints_scan's callback: keeps a copy of each key, with Exim's NUL put back. */
static inline int hintsd_collect_key(void *user, const void *key, size_t key_len, const void *value,
                                     size_t value_len, uint64_t stamp_secs, uint32_t stamp_micros) {
    hintsd_cursor *cursor = user;
    (void)value;
    (void)value_len;
    (void)stamp_secs;
    (void)stamp_micros;
    if (cursor->count == cursor->capacity) {
        size_t capacity = cursor->capacity == 0 ? 256 : 2 * cursor->capacity;
        hintsd_datum *keys = realloc(cursor->keys, capacity * sizeof *keys);
        if (keys == NULL) {
            cursor->out_of_memory = TRUE;
            return 1;
        }
        cursor->keys = keys;
        cursor->capacity = capacity;
    }
    uschar *copy = malloc(key_len + 1);
    if (copy == NULL) {
        cursor->out_of_memory = TRUE;
        return 1;
    }
    memcpy(copy, key, key_len);
    copy[key_len] = '\0';
    cursor->keys[cursor->count].data = copy;
    cursor->keys[cursor->count].len = (unsigned)(key_len + 1); /* keys are at most 1024 bytes */
    cursor->count++;
    return 0;
}

/* Takes the snapshot of db's keys, in key order, dropping any earlier one. */
static inline void hintsd_cursor_load(hintsd_cursor *cursor) {
    for (size_t i = 0; i < cursor->count; i++) {
        free(cursor->keys[i].data);
    }
    cursor->count = 0;
    cursor->next = 0;
    cursor->out_of_memory = FALSE;
    cursor->loaded = TRUE;
    if (!hintsd_keep(cursor->db)) {
        return;
    }
    int code = hints_scan(hintsd_exim_client(), cursor->db->name, NULL, 0, hintsd_collect_key, cursor);
    if (code != HINTS_OK) {
        hintsd_debug_failure("scan", cursor->db->name, code);
    }
    if (cursor->out_of_memory) {
        DEBUG(D_hints_lookup)
        debug_printf_indent("hintsd: out of memory after %lu keys of %s\n", (unsigned long)cursor->count,
                            cursor->db->name);
    }
}

/* The next key of the scan (first: from the start) into key, NUL-terminated; the cursor owns
 * it. The value is not fetched (Exim reads it with exim_dbget). FALSE at the end. */
static inline BOOL exim_dbscan(EXIM_DB *db, EXIM_DATUM *key, EXIM_DATUM *value, BOOL first, EXIM_CURSOR *cursor) {
    (void)db;
    if (value != NULL) {
        value->data = NULL;
        value->len = 0;
    }
    if (cursor == NULL) {
        return FALSE;
    }
    if (first || !cursor->loaded) {
        hintsd_cursor_load(cursor);
    }
    if (cursor->next >= cursor->count) {
        return FALSE;
    }
    *key = cursor->keys[cursor->next++];
    return TRUE;
}

/* Ends a scan, freeing its keys. */
static inline void exim_dbdelete_cursor(EXIM_CURSOR *cursor) {
    if (cursor == NULL) {
        return;
    }
    for (hintsd_cursor **link = &cursor->db->scans; *link != NULL; link = &(*link)->next_scan) {
        if (*link == cursor) {
            *link = cursor->next_scan;
            break;
        }
    }
    hintsd_cursor_free(cursor);
}

/* ---- datums --------------------------------------------------------------------------------- */

static inline uschar *exim_datum_data_get(EXIM_DATUM *datum) {
    return datum->data;
}

static inline void exim_datum_data_set(EXIM_DATUM *datum, void *data) {
    datum->data = data;
}

static inline unsigned exim_datum_size_get(EXIM_DATUM *datum) {
    return datum->len;
}

static inline void exim_datum_size_set(EXIM_DATUM *datum, unsigned len) {
    datum->len = len;
}

static inline void exim_datum_init(EXIM_DATUM *datum) {
    datum->data = NULL;
    datum->len = 0;
}

/* Frees a value from exim_dbget (and empties the datum, so a second free does nothing). */
static inline void exim_datum_free(EXIM_DATUM *datum) {
    hints_free(datum->data);
    datum->data = NULL;
    datum->len = 0;
}

#endif /* HINTS_HINTSD_H */
