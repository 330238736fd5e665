/*
 * hints_client.h: the C interface to hintsd, the hints daemon for mail relays.
 *
 * Link with libhints_client.so, or with libhints_client.a and the system libraries Rust's
 * standard library needs (-lgcc_s -lutil -lrt -lpthread -lm -ldl), both built by
 * `cargo build -p hints-client` (--release for speed, --no-default-features to leave out the
 * async client, which C cannot use). This header is written by hand; a test in
 * hints-client/src/ffi.rs checks that it declares exactly the functions the library exports
 * and the codes' values.
 *
 * Conventions:
 * - A handle (hints_t *) is made by hints_open and freed by hints_close. It does not connect
 *   until its first call, and reconnects by itself after a daemon restart, a timed-out call,
 *   or a fork(): a child may go on using its parent's handle and gets its own connection
 *   (never writing to the parent's). A handle is used by one thread at a time.
 * - Every call returns HINTS_OK (0), HINTS_NOT_FOUND (1), or a negative HINTS_* code;
 *   hints_strerror names a code, hints_last_error gives the last call's full message.
 * - Every call takes at most the handle's timeout (1 s by default) and then answers
 *   HINTS_UNAVAILABLE, which an MTA should read as "no hint, carry on". A signal the host
 *   catches (an alarm, SIGCHLD) interrupts a call's wait but not the call: it waits on
 *   until its reply or its timeout, whichever comes first.
 * - A NULL handle, a NULL pointer where one is required, or a NULL buffer with a non-zero
 *   length is HINTS_INVALID, never a crash. Optional out-parameters may be NULL; they are
 *   written only on HINTS_OK unless a function says otherwise.
 * - Database names are 1-64 characters of a-z, 0-9, '_' and '-' ("retry", "misc",
 *   "wait-remote_smtp", "greylist"); a name that is not valid, or not UTF-8, is
 *   HINTS_BAD_REQUEST, as is an empty key, a key over 1024 bytes or a value over 256 KiB.
 * - Keys and values are bytes (pointer and length); NULL is allowed with a length of 0.
 * - Where a call takes at_secs and at_micros, that is the MTA's clock at the event (Unix
 *   seconds and microseconds, micros under 1000000); a negative at_secs means the daemon's
 *   clock.
 * - No function lets a failure inside the library unwind into the caller: it answers
 *   HINTS_PANIC instead, and the handle stays usable.
 */
#ifndef HINTS_CLIENT_H
#define HINTS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The call succeeded. */
#define HINTS_OK 0
/* There is no record under the key (not an error). */
#define HINTS_NOT_FOUND 1
/* No daemon answered in time (no socket, connection refused, timeout): carry on without. */
#define HINTS_UNAVAILABLE (-1)
/* The daemon will not talk to this client (credentials, protocol version, too many). */
#define HINTS_REFUSED (-2)
/* The request was wrong: a bad database name, key, value, condition or argument. */
#define HINTS_BAD_REQUEST (-3)
/* The daemon answered with an error: busy, shutting down, a failed database. */
#define HINTS_DAEMON_ERROR (-4)
/* The daemon's answer could not be used (a version mix-up or a damaged frame). */
#define HINTS_PROTOCOL (-5)
/* A NULL handle, a NULL required pointer, or a NULL buffer with a non-zero length. */
#define HINTS_INVALID (-6)
/* The caller's buffer is too small; the length needed was written to *value_len. */
#define HINTS_BUFFER_TOO_SMALL (-7)
/* A failure inside the library (a bug), caught before it reached the caller. */
#define HINTS_PANIC (-8)

/* An opaque handle: one client of hintsd. */
typedef struct hints_handle hints_t;

/*
 * The callback of hints_scan: the caller's user pointer, then one record (its key, value and
 * stamp; the pointers are valid only during the call). Return 0 to go on, non-zero to stop.
 * The callback must not call a function on the handle being scanned.
 */
typedef int (*hints_scan_cb)(void *user, const void *key, size_t key_len, const void *value, size_t value_len,
                             uint64_t stamp_secs, uint32_t stamp_micros);

/* ---- handles ---------------------------------------------------------------------------- */

/*
 * Makes a handle for the daemon at socket_path; NULL or "" uses the default rule:
 * $HINTSD_SOCKET, else $XDG_RUNTIME_DIR/hintsd/hintsd.sock, else /run/hintsd/hintsd.sock for
 * root and /tmp/hintsd-<euid>/hintsd.sock for others. timeout_ms is the per-call timeout
 * (0: 1000). Does not connect. Returns NULL only if the library failed inside.
 *
 * Once connected, the handle asks the daemon for a shared-memory ring (requests and replies
 * through memory, a byte on the socket only to wake a sleeping end) and stays on the socket
 * if the daemon offers none; $HINTSD_RING=0 keeps every handle of the process on its socket.
 * A ring takes no descriptor beyond the socket; it maps 2 x ring_bytes of shared memory
 * (64 KiB each way by default) for the connection's life.
 */
hints_t *hints_open(const char *socket_path, unsigned timeout_ms);

/* Closes the handle's connection (freeing its serialize slots) and frees it. NULL is ignored. */
void hints_close(hints_t *h);

/*
 * Sets the per-call timeout for the calls that follow (0: 1000 ms). The connection, and any
 * serialize slot it holds, is kept.
 */
int hints_set_timeout(hints_t *h, unsigned timeout_ms);

/* A short static description of a HINTS_* code (never NULL, also for unknown codes). */
const char *hints_strerror(int code);

/*
 * The full message of the last call on h that did not return HINTS_OK ("" after one that
 * did): owned by the handle, valid until its next call. For a NULL handle, a static string.
 */
const char *hints_last_error(const hints_t *h);

/* Checks that the daemon answers, connecting if need be. */
int hints_ping(hints_t *h);

/* ---- records ---------------------------------------------------------------------------- */

/*
 * Copies the value stored under key in db into buf (buf_len bytes). The value's length goes
 * to *value_len, the stamp of its last write to *stamp_secs and *stamp_micros (each
 * optional). HINTS_NOT_FOUND when there is no record (*value_len set to 0).
 * HINTS_BUFFER_TOO_SMALL when the value is longer than buf_len: only *value_len is written
 * (the length needed), so the caller can retry with a larger buffer; buf may be NULL with a
 * buf_len of 0 to ask for the length. buf must not overlap key: the value is copied into buf
 * from where the reply was read, while the call still holds key.
 */
int hints_get(hints_t *h, const char *db, const void *key, size_t key_len, void *buf, size_t buf_len,
              size_t *value_len, uint64_t *stamp_secs, uint32_t *stamp_micros);

/*
 * As hints_get, into a buffer this call allocates: *value (free it with hints_free) and
 * *value_len, both required. On any other result than HINTS_OK, *value is NULL (when value is
 * not NULL itself) and nothing needs freeing.
 */
int hints_get_alloc(hints_t *h, const char *db, const void *key, size_t key_len, void **value, size_t *value_len);

/* Frees a value from hints_get_alloc. NULL is ignored. */
void hints_free(void *value);

/*
 * Stores value (value_len bytes, may be 0) under key in db; the stamp the daemon gave the
 * write goes to *stamp_secs and *stamp_micros (optional).
 */
int hints_put(hints_t *h, const char *db, const void *key, size_t key_len, const void *value, size_t value_len,
              uint64_t *stamp_secs, uint32_t *stamp_micros);

/*
 * Stores value under key in db only if there is no record under key yet (a compare-and-set
 * against "no record"): *stored (optional) is 1 if it was stored, 0 if a record was already
 * there (left unchanged).
 */
int hints_put_if_absent(hints_t *h, const char *db, const void *key, size_t key_len, const void *value,
                        size_t value_len, int *stored);

/* Deletes the record under key in db; *existed (optional) is 1 if there was one, else 0. */
int hints_delete(hints_t *h, const char *db, const void *key, size_t key_len, int *existed);

/*
 * Calls cb(user, ...) for every record in db whose key starts with prefix (NULL with a
 * prefix_len of 0: every record), in key order, fetching pages as it goes, until the records
 * end or cb returns non-zero. Returns HINTS_OK either way; a failure part way returns its
 * code after the records already given to cb. The handle's timeout applies to each page
 * (of up to 256 records), not to the whole scan, so a large database can be scanned
 * whole; a caller that needs a deadline for the scan stops it from cb.
 */
int hints_scan(hints_t *h, const char *db, const void *prefix, size_t prefix_len, hints_scan_cb cb, void *user);

/* ---- hints ------------------------------------------------------------------------------ */

/*
 * Applies Exim's ratelimit condition ("100 / 1h / per_rcpt / 192.0.2.1": limit, period,
 * options, key) atomically in the ratelimit database, as at at_secs.at_micros. *rate
 * (optional) gets the smoothed rate after the event, *over (optional) 1 when the rate is over
 * the limit (rate >= limit, Exim's rule) and 0 otherwise. Never resent after a broken
 * connection: the event counts once at most.
 */
int hints_ratelimit(hints_t *h, const char *condition, int64_t at_secs, uint32_t at_micros, double *rate,
                    int *over);

/*
 * Applies Exim's seen condition ("-5m / key=K", "1d / key=K / readonly") in the seen
 * database, as at at_secs.at_micros; *result (optional) is the condition's truth, 1 or 0.
 */
int hints_seen(hints_t *h, const char *condition, int64_t at_secs, uint32_t at_micros, int *result);

/*
 * Checks the greylist triplet under key in db as at at_secs.at_micros: the first attempt is
 * deferred, a retry once delay_secs have passed passes and is remembered, a triplet unseen for
 * expiry_secs is forgotten. *pass (optional) is 1 to let the message through, 0 to defer;
 * *retry_after_secs (optional) the seconds of delay left (0 on a pass).
 */
int hints_greylist(hints_t *h, const char *db, const void *key, size_t key_len, uint64_t delay_secs,
                   uint64_t expiry_secs, int64_t at_secs, uint32_t at_micros, int *pass, uint64_t *retry_after_secs);

/*
 * Takes one of limit (at least 1) slots under key in db (Exim's serialize and ETRN records)
 * for this handle's connection: *held (optional) is 1 if the connection holds a slot now, 0
 * if every slot is taken; *holders (optional) counts the holders. The slot goes with the
 * connection: hints_serialize_release, hints_close, the process's exit, a timed-out call; a
 * forked child never holds its parent's slots.
 */
int hints_serialize_take(hints_t *h, const char *db, const void *key, size_t key_len, uint32_t limit, int *held,
                         uint32_t *holders);

/*
 * Gives back the slot this handle's connection holds under key in db (a no-op when it holds
 * none); *holders (optional) counts the holders left.
 */
int hints_serialize_release(hints_t *h, const char *db, const void *key, size_t key_len, uint32_t *holders);

/*
 * Adds delta (may be negative) to the 64-bit counter under key in db (a missing counter starts
 * at 0) as at at_secs.at_micros; a counter this creates lives expiry_secs (0: no expiry of its
 * own). *value (optional) gets the new value. A record that is not a counter, or an overflow,
 * is HINTS_BAD_REQUEST. Never resent after a broken connection.
 */
int hints_counter(hints_t *h, const char *db, const void *key, size_t key_len, int64_t delta, uint64_t expiry_secs,
                  int64_t at_secs, uint32_t at_micros, int64_t *value);

/* ---- exclusive sessions ------------------------------------------------------------------ */

/*
 * Holds db exclusively for lease_ms milliseconds (1 to 60000) for this handle's connection, for
 * read-modify-write code written against Exim's lockfile: other clients' requests to db wait,
 * in order, until hints_unlock, the lease's end or the connection's close. Calling it again
 * while holding db renews the lease. Waits for another client's session at most the handle's
 * timeout (then HINTS_UNAVAILABLE). The session goes with the connection, as a serialize slot
 * does; a forked child never holds its parent's. Never resent after a broken connection.
 */
int hints_lock(hints_t *h, const char *db, unsigned lease_ms);

/*
 * The id of the handle's open connection (1, 2, ... in the order the handle opened them), or 0
 * when it has none (NULL handle included). Sessions and slots belong to a connection: a
 * caller holding one checks before its next call that the id has not changed, since a
 * timed-out call drops the connection and what it held.
 */
uint64_t hints_connection_id(const hints_t *h);

/*
 * 1 while the handle's open connection speaks through a shared-memory ring, 0 when it is on
 * its socket ($HINTSD_RING=0, or a daemon that offers none) or has no connection (NULL
 * handle included).
 */
int hints_on_ring(const hints_t *h);

/*
 * Ends this handle's exclusive session on db: *held (optional) is 1 if the connection still
 * held it, 0 if it had already ended (the lease ran out, or it went with an earlier connection).
 */
int hints_unlock(hints_t *h, const char *db, int *held);

#ifdef __cplusplus
}
#endif

#endif /* HINTS_CLIENT_H */
