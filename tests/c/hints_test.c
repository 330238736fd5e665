/*
 * hints_test.c: drives every function of hints_client.h against a running hintsd.
 *
 *     hints_test SOCKET
 *
 * Built and run by tests/c_library.rs (once linked with libhints_client.a, once with
 * libhints_client.so) against a fresh daemon. Prints one line per failed check, then
 * "N passed, M failed", and exits 1 if any check failed.
 */
#define _POSIX_C_SOURCE 200809L

#include "hints_client.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

static int passed;
static int failed;
static const char *socket_path;

static void check(int ok, const char *what, int line) {
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL line %d: %s\n", line, what);
    }
}

#define CHECK(cond) check((cond) != 0, #cond, __LINE__)

/* A call that must return `want`; on a mismatch, says what came back and why. */
static void check_rc(hints_t *h, int got, int want, const char *call, int line) {
    if (got == want) {
        passed++;
    } else {
        failed++;
        printf("FAIL line %d: %s returned %d (%s: %s), wanted %d (%s)\n", line, call, got, hints_strerror(got),
               hints_last_error(h), want, hints_strerror(want));
    }
}

#define RC(h, call, want) check_rc((h), (call), (want), #call, __LINE__)

#define KEY(s) (s), strlen(s)

static hints_t *open_handle(void) {
    hints_t *h = hints_open(socket_path, 5000);
    if (h == NULL) {
        printf("FAIL: hints_open returned NULL\n");
        exit(1);
    }
    return h;
}

static void test_put_and_get(hints_t *h) {
    const char *value = "Connection refused";
    uint64_t put_secs = 0, got_secs = 0;
    uint32_t put_micros = 0, got_micros = 0;
    RC(h, hints_put(h, "retry", KEY("T:mx.example.net:192.0.2.7"), value, strlen(value), &put_secs, &put_micros),
       HINTS_OK);
    CHECK(put_secs > 1000000000u);
    CHECK(strcmp(hints_last_error(h), "") == 0);

    char buf[64];
    size_t len = 0;
    memset(buf, 0, sizeof buf);
    RC(h, hints_get(h, "retry", KEY("T:mx.example.net:192.0.2.7"), buf, sizeof buf, &len, &got_secs, &got_micros),
       HINTS_OK);
    CHECK(len == strlen(value) && memcmp(buf, value, len) == 0);
    CHECK(got_secs == put_secs && got_micros == put_micros);

    /* A buffer too small: the length needed comes back (and nothing else is written), then a
     * retry with that much works. */
    char small[4];
    memset(small, '#', sizeof small);
    uint64_t untouched_secs = 77;
    uint32_t untouched_micros = 77;
    len = 0;
    RC(h, hints_get(h, "retry", KEY("T:mx.example.net:192.0.2.7"), small, sizeof small, &len, &untouched_secs,
                    &untouched_micros),
       HINTS_BUFFER_TOO_SMALL);
    CHECK(len == strlen(value));
    CHECK(untouched_secs == 77 && untouched_micros == 77);
    CHECK(memcmp(small, "####", sizeof small) == 0);
    CHECK(strstr(hints_last_error(h), "buffer") != NULL);
    len = 0;
    RC(h, hints_get(h, "retry", KEY("T:mx.example.net:192.0.2.7"), NULL, 0, &len, NULL, NULL),
       HINTS_BUFFER_TOO_SMALL);
    CHECK(len == strlen(value));
    char *exact = malloc(len);
    size_t exact_len = 0;
    RC(h, hints_get(h, "retry", KEY("T:mx.example.net:192.0.2.7"), exact, len, &exact_len, NULL, NULL), HINTS_OK);
    CHECK(exact_len == strlen(value) && memcmp(exact, value, exact_len) == 0);
    free(exact);

    /* Every out-parameter is optional. */
    RC(h, hints_get(h, "retry", KEY("T:mx.example.net:192.0.2.7"), buf, sizeof buf, NULL, NULL, NULL), HINTS_OK);
    RC(h, hints_put(h, "misc", KEY("no-stamp"), "x", 1, NULL, NULL), HINTS_OK);

    /* Binary keys and values, and an empty value. */
    const unsigned char bin_key[] = {0x00, 0xff, 0x10, 0x00};
    const unsigned char bin_value[] = {0x00, 0x01, 0x00, 0xfe};
    RC(h, hints_put(h, "misc", bin_key, sizeof bin_key, bin_value, sizeof bin_value, NULL, NULL), HINTS_OK);
    len = 0;
    RC(h, hints_get(h, "misc", bin_key, sizeof bin_key, buf, sizeof buf, &len, NULL, NULL), HINTS_OK);
    CHECK(len == sizeof bin_value && memcmp(buf, bin_value, len) == 0);
    RC(h, hints_put(h, "misc", KEY("empty"), NULL, 0, NULL, NULL), HINTS_OK);
    len = 99;
    RC(h, hints_get(h, "misc", KEY("empty"), NULL, 0, &len, NULL, NULL), HINTS_OK);
    CHECK(len == 0);

    /* A missing key. */
    len = 99;
    RC(h, hints_get(h, "retry", KEY("no such key"), buf, sizeof buf, &len, NULL, NULL), HINTS_NOT_FOUND);
    CHECK(len == 0);
}

static void test_get_alloc(hints_t *h) {
    char big[3000];
    memset(big, 'v', sizeof big);
    RC(h, hints_put(h, "tls", KEY("session-1"), big, sizeof big, NULL, NULL), HINTS_OK);
    void *value = NULL;
    size_t len = 0;
    RC(h, hints_get_alloc(h, "tls", KEY("session-1"), &value, &len), HINTS_OK);
    CHECK(value != NULL && len == sizeof big && memcmp(value, big, len) == 0);
    hints_free(value);
    hints_free(NULL);

    value = (void *)1;
    len = 7;
    RC(h, hints_get_alloc(h, "tls", KEY("session-none"), &value, &len), HINTS_NOT_FOUND);
    CHECK(value == NULL && len == 0);
    RC(h, hints_get_alloc(h, "tls", KEY("session-1"), NULL, &len), HINTS_INVALID);
    value = (void *)1;
    RC(h, hints_get_alloc(h, "tls", KEY("session-1"), &value, NULL), HINTS_INVALID);
    CHECK(value == NULL);
}

static void test_delete(hints_t *h) {
    int existed = -1;
    RC(h, hints_put(h, "callout", KEY("a@example.net"), "ok", 2, NULL, NULL), HINTS_OK);
    RC(h, hints_delete(h, "callout", KEY("a@example.net"), &existed), HINTS_OK);
    CHECK(existed == 1);
    RC(h, hints_delete(h, "callout", KEY("a@example.net"), &existed), HINTS_OK);
    CHECK(existed == 0);
    RC(h, hints_delete(h, "callout", KEY("a@example.net"), NULL), HINTS_OK);
    char buf[8];
    RC(h, hints_get(h, "callout", KEY("a@example.net"), buf, sizeof buf, NULL, NULL, NULL), HINTS_NOT_FOUND);
}

struct scan_state {
    int seen;
    int stop_after; /* 0: never stop */
    int in_order;
    int stamps_set;
    char last[64];
};

static int scan_cb(void *user, const void *key, size_t key_len, const void *value, size_t value_len,
                   uint64_t stamp_secs, uint32_t stamp_micros) {
    struct scan_state *state = user;
    char k[64];
    size_t n = key_len < sizeof k - 1 ? key_len : sizeof k - 1;
    memcpy(k, key, n);
    k[n] = '\0';
    if (state->seen > 0 && strcmp(k, state->last) <= 0) {
        state->in_order = 0;
    }
    if (stamp_secs == 0 || stamp_micros >= 1000000u || value_len != 1 || ((const char *)value)[0] != 'x') {
        state->stamps_set = 0;
    }
    strcpy(state->last, k);
    state->seen++;
    return state->stop_after != 0 && state->seen >= state->stop_after;
}

static void test_scan(hints_t *h) {
    /* More records than one page (256), so the scan pages by itself. */
    char key[32];
    for (int i = 0; i < 600; i++) {
        snprintf(key, sizeof key, "scan-%04d", i);
        RC(h, hints_put(h, "wait-remote_smtp", KEY(key), "x", 1, NULL, NULL), HINTS_OK);
    }
    RC(h, hints_put(h, "wait-remote_smtp", KEY("other"), "x", 1, NULL, NULL), HINTS_OK);

    struct scan_state all = {0, 0, 1, 1, ""};
    RC(h, hints_scan(h, "wait-remote_smtp", KEY("scan-"), scan_cb, &all), HINTS_OK);
    CHECK(all.seen == 600);
    CHECK(all.in_order && all.stamps_set);
    CHECK(strcmp(all.last, "scan-0599") == 0);

    struct scan_state early = {0, 5, 1, 1, ""};
    RC(h, hints_scan(h, "wait-remote_smtp", KEY("scan-"), scan_cb, &early), HINTS_OK);
    CHECK(early.seen == 5);
    CHECK(strcmp(early.last, "scan-0004") == 0);

    struct scan_state everything = {0, 0, 1, 1, ""};
    RC(h, hints_scan(h, "wait-remote_smtp", NULL, 0, scan_cb, &everything), HINTS_OK);
    CHECK(everything.seen == 601);

    struct scan_state none = {0, 0, 1, 1, ""};
    RC(h, hints_scan(h, "wait-remote_smtp", KEY("nothing-"), scan_cb, &none), HINTS_OK);
    CHECK(none.seen == 0);
    RC(h, hints_scan(h, "wait-remote_smtp", KEY("scan-"), NULL, NULL), HINTS_INVALID);
}

static void test_ratelimit(hints_t *h) {
    /* Limit 3 per hour, one event a second: the fourth is the first over (rate >= limit). */
    double rate = -1;
    int over = -1;
    for (int n = 0; n < 3; n++) {
        RC(h, hints_ratelimit(h, "3 / 1h / per_rcpt / 192.0.2.1", 1000000000 + n, 0, &rate, &over), HINTS_OK);
        CHECK(over == 0);
    }
    CHECK(rate > 1.9 && rate < 3.0);
    RC(h, hints_ratelimit(h, "3 / 1h / per_rcpt / 192.0.2.1", 1000000003, 0, &rate, &over), HINTS_OK);
    CHECK(over == 1);
    CHECK(rate >= 3.0);
    RC(h, hints_ratelimit(h, "3 / 1h / per_rcpt / 192.0.2.1", 1000000004, 500000, NULL, NULL), HINTS_OK);
    /* Exim's key layout in the ratelimit database. */
    size_t len = 0;
    RC(h, hints_get(h, "ratelimit", KEY("1h/per_rcpt/192.0.2.1"), NULL, 0, &len, NULL, NULL),
       HINTS_BUFFER_TOO_SMALL);
    CHECK(len == 24);
    /* The daemon's clock. */
    RC(h, hints_ratelimit(h, "100 / 1h / 192.0.2.2", -1, 0, &rate, &over), HINTS_OK);
    CHECK(over == 0);
    /* A condition Exim would refuse, and microseconds that are not under a second. */
    RC(h, hints_ratelimit(h, "10 / 1h / strict / leaky / k", -1, 0, &rate, &over), HINTS_BAD_REQUEST);
    CHECK(strstr(hints_last_error(h), "conflicting") != NULL);
    RC(h, hints_ratelimit(h, "10 / 1h / k", 5, 1000000, &rate, &over), HINTS_BAD_REQUEST);
    RC(h, hints_ratelimit(h, NULL, -1, 0, &rate, &over), HINTS_INVALID);
}

static void test_seen(hints_t *h) {
    int result = -1;
    RC(h, hints_seen(h, "-5m / key=conn-192.0.2.10", 1000000, 0, &result), HINTS_OK);
    CHECK(result == 0);
    RC(h, hints_seen(h, "5m / key=conn-192.0.2.10 / readonly", 1000240, 0, &result), HINTS_OK);
    CHECK(result == 1);
    RC(h, hints_seen(h, "-5m / key=conn-192.0.2.10", 1000600, 0, &result), HINTS_OK);
    CHECK(result == 1);
    RC(h, hints_seen(h, "-5m / key=conn-192.0.2.11", -1, 0, NULL), HINTS_OK);
    RC(h, hints_seen(h, "nonsense", -1, 0, &result), HINTS_BAD_REQUEST);
    RC(h, hints_seen(h, NULL, -1, 0, &result), HINTS_INVALID);
}

static void test_greylist(hints_t *h) {
    const char *triplet = "192.0.2.1 <a@example.net> <b@example.org>";
    int pass = -1;
    uint64_t left = 99;
    RC(h, hints_greylist(h, "greylist", KEY(triplet), 300, 86400 * 30, 2000000, 0, &pass, &left), HINTS_OK);
    CHECK(pass == 0 && left == 300);
    RC(h, hints_greylist(h, "greylist", KEY(triplet), 300, 86400 * 30, 2000100, 0, &pass, &left), HINTS_OK);
    CHECK(pass == 0 && left == 200);
    RC(h, hints_greylist(h, "greylist", KEY(triplet), 300, 86400 * 30, 2000300, 0, &pass, &left), HINTS_OK);
    CHECK(pass == 1 && left == 0);
    RC(h, hints_greylist(h, "greylist", KEY(triplet), 300, 86400 * 30, 2000301, 0, &pass, NULL), HINTS_OK);
    CHECK(pass == 1);
    RC(h, hints_greylist(h, "greylist", KEY("another"), 300, 3600, -1, 0, &pass, &left), HINTS_OK);
    CHECK(pass == 0 && left == 300);
    RC(h, hints_greylist(h, "greylist", NULL, 0, 300, 3600, -1, 0, &pass, &left), HINTS_BAD_REQUEST);
}

static void test_serialize(hints_t *h) {
    hints_t *other = open_handle();
    int held = -1;
    uint32_t holders = 99;
    RC(h, hints_serialize_take(h, "misc", KEY("etrn-example.net"), 1, &held, &holders), HINTS_OK);
    CHECK(held == 1 && holders == 1);
    RC(other, hints_serialize_take(other, "misc", KEY("etrn-example.net"), 1, &held, &holders), HINTS_OK);
    CHECK(held == 0 && holders == 1);
    RC(h, hints_serialize_release(h, "misc", KEY("etrn-example.net"), &holders), HINTS_OK);
    CHECK(holders == 0);
    RC(other, hints_serialize_take(other, "misc", KEY("etrn-example.net"), 1, &held, NULL), HINTS_OK);
    CHECK(held == 1);
    /* Closing a handle frees its slot as soon as the daemon sees the close (on another of
       its threads, so this may take a moment). */
    hints_close(other);
    for (int tries = 0; tries < 2000; tries++) {
        RC(h, hints_serialize_take(h, "misc", KEY("etrn-example.net"), 1, &held, &holders), HINTS_OK);
        if (held == 1)
            break;
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
    CHECK(held == 1 && holders == 1);
    RC(h, hints_serialize_release(h, "misc", KEY("etrn-example.net"), NULL), HINTS_OK);
    RC(h, hints_serialize_take(h, "misc", KEY("etrn-example.net"), 0, &held, &holders), HINTS_BAD_REQUEST);
}

static void test_counter(hints_t *h) {
    int64_t value = 0;
    RC(h, hints_counter(h, "misc", KEY("hits"), 5, 0, -1, 0, &value), HINTS_OK);
    CHECK(value == 5);
    RC(h, hints_counter(h, "misc", KEY("hits"), -7, 0, -1, 0, &value), HINTS_OK);
    CHECK(value == -2);
    RC(h, hints_counter(h, "misc", KEY("hits"), 0, 0, -1, 0, NULL), HINTS_OK);
    /* A counter with an expiry, as at a given time. */
    RC(h, hints_counter(h, "misc", KEY("hits-expiring"), 1, 3600, 1700000000, 0, &value), HINTS_OK);
    CHECK(value == 1);
    char buf[32];
    size_t len = 0;
    RC(h, hints_get(h, "misc", KEY("hits"), buf, sizeof buf, &len, NULL, NULL), HINTS_OK);
    CHECK(len == 2 && memcmp(buf, "-2", 2) == 0);
    /* Overflow, and a record that is not a counter. */
    RC(h, hints_counter(h, "misc", KEY("hits"), INT64_MIN, 0, -1, 0, &value), HINTS_BAD_REQUEST);
    RC(h, hints_put(h, "misc", KEY("not-a-counter"), "abc", 3, NULL, NULL), HINTS_OK);
    RC(h, hints_counter(h, "misc", KEY("not-a-counter"), 1, 0, -1, 0, &value), HINTS_BAD_REQUEST);
}

static void test_put_if_absent_and_sessions(hints_t *h) {
    int stored = -1, held = -1;
    RC(h, hints_put_if_absent(h, "misc", KEY("first-wins"), "one", 3, &stored), HINTS_OK);
    CHECK(stored == 1);
    RC(h, hints_put_if_absent(h, "misc", KEY("first-wins"), "two", 3, &stored), HINTS_OK);
    CHECK(stored == 0);
    char buf[8];
    size_t len = 0;
    RC(h, hints_get(h, "misc", KEY("first-wins"), buf, sizeof buf, &len, NULL, NULL), HINTS_OK);
    CHECK(len == 3 && memcmp(buf, "one", 3) == 0);

    CHECK(hints_connection_id(NULL) == 0);
    CHECK(hints_on_ring(NULL) == 0);
    {
        /* The test command runs this program with the ring (the default) and with HINTSD_RING=0. */
        const char *ring_env = getenv("HINTSD_RING");
        int socket_only = ring_env != NULL && strcmp(ring_env, "0") == 0;
        CHECK(hints_on_ring(h) == !socket_only);
    }
    uint64_t connection = hints_connection_id(h);
    CHECK(connection >= 1); /* the calls above opened one */
    RC(h, hints_lock(h, "misc", 5000), HINTS_OK);
    CHECK(hints_connection_id(h) == connection);
    RC(h, hints_put(h, "misc", KEY("in-session"), "x", 1, NULL, NULL), HINTS_OK);
    RC(h, hints_unlock(h, "misc", &held), HINTS_OK);
    CHECK(held == 1);
    RC(h, hints_unlock(h, "misc", &held), HINTS_OK);
    CHECK(held == 0);
    RC(h, hints_lock(h, "misc", 0), HINTS_BAD_REQUEST);
    RC(NULL, hints_lock(NULL, "misc", 5000), HINTS_INVALID);
    RC(h, hints_unlock(h, NULL, &held), HINTS_INVALID);
    RC(h, hints_put_if_absent(h, "misc", NULL, 3, "v", 1, &stored), HINTS_INVALID);
}

static void test_timeouts_and_availability(hints_t *h) {
    RC(h, hints_set_timeout(h, 250), HINTS_OK);
    RC(h, hints_ping(h), HINTS_OK);
    RC(h, hints_set_timeout(h, 0), HINTS_OK);
    RC(h, hints_ping(h), HINTS_OK);
    RC(NULL, hints_set_timeout(NULL, 5), HINTS_INVALID);

    /* No daemon behind the socket: unavailable, within the timeout, with the socket named. */
    hints_t *nowhere = hints_open("/nonexistent/hintsd.sock", 100);
    CHECK(nowhere != NULL);
    RC(nowhere, hints_ping(nowhere), HINTS_UNAVAILABLE);
    CHECK(strstr(hints_last_error(nowhere), "/nonexistent/hintsd.sock") != NULL);
    RC(nowhere, hints_put(nowhere, "misc", KEY("k"), "v", 1, NULL, NULL), HINTS_UNAVAILABLE);
    hints_close(nowhere);

    /* NULL: the default rule, here $HINTSD_SOCKET. */
    if (setenv("HINTSD_SOCKET", socket_path, 1) != 0) {
        printf("FAIL: setenv: %s\n", strerror(errno));
        failed++;
    }
    hints_t *by_env = hints_open(NULL, 0);
    CHECK(by_env != NULL);
    RC(by_env, hints_ping(by_env), HINTS_OK);
    char buf[64];
    size_t len = 0;
    RC(by_env, hints_get(by_env, "retry", KEY("T:mx.example.net:192.0.2.7"), buf, sizeof buf, &len, NULL, NULL),
       HINTS_OK);
    hints_close(by_env);
    unsetenv("HINTSD_SOCKET");
}

static void test_strerror(void) {
    const int codes[] = {HINTS_OK,           HINTS_NOT_FOUND,   HINTS_UNAVAILABLE, HINTS_REFUSED,
                         HINTS_BAD_REQUEST,  HINTS_DAEMON_ERROR, HINTS_PROTOCOL,    HINTS_INVALID,
                         HINTS_BUFFER_TOO_SMALL, HINTS_PANIC};
    const size_t n = sizeof codes / sizeof codes[0];
    const char *unknown = hints_strerror(12345);
    CHECK(unknown != NULL && *unknown != '\0');
    for (size_t i = 0; i < n; i++) {
        const char *text = hints_strerror(codes[i]);
        CHECK(text != NULL && *text != '\0' && strcmp(text, unknown) != 0);
        for (size_t j = 0; j < i; j++) {
            CHECK(strcmp(text, hints_strerror(codes[j])) != 0);
        }
    }
    CHECK(strcmp(hints_strerror(HINTS_OK), "success") == 0);
    CHECK(strstr(hints_strerror(HINTS_UNAVAILABLE), "unavailable") != NULL);
}

static void test_last_error(hints_t *h) {
    char buf[8];
    RC(h, hints_get(h, "Bad Name", KEY("k"), buf, sizeof buf, NULL, NULL, NULL), HINTS_BAD_REQUEST);
    CHECK(strstr(hints_last_error(h), "database name") != NULL);
    RC(h, hints_get(h, "mi\xffsc", KEY("k"), buf, sizeof buf, NULL, NULL, NULL), HINTS_BAD_REQUEST);
    CHECK(strstr(hints_last_error(h), "UTF-8") != NULL);
    RC(h, hints_get(h, "misc", "", 0, buf, sizeof buf, NULL, NULL, NULL), HINTS_BAD_REQUEST);
    CHECK(strstr(hints_last_error(h), "key is empty") != NULL);
    char huge_key[2000];
    memset(huge_key, 'k', sizeof huge_key);
    RC(h, hints_put(h, "misc", huge_key, sizeof huge_key, "v", 1, NULL, NULL), HINTS_BAD_REQUEST);
    CHECK(strstr(hints_last_error(h), "limit") != NULL);
    RC(h, hints_ping(h), HINTS_OK);
    CHECK(strcmp(hints_last_error(h), "") == 0);
    CHECK(hints_last_error(NULL) != NULL && *hints_last_error(NULL) != '\0');
}

static void test_nulls(hints_t *h) {
    char buf[8];
    size_t len;
    /* A NULL handle, to every function that takes one. */
    RC(NULL, hints_ping(NULL), HINTS_INVALID);
    RC(NULL, hints_get(NULL, "misc", KEY("k"), buf, sizeof buf, &len, NULL, NULL), HINTS_INVALID);
    RC(NULL, hints_get_alloc(NULL, "misc", KEY("k"), NULL, NULL), HINTS_INVALID);
    RC(NULL, hints_put(NULL, "misc", KEY("k"), "v", 1, NULL, NULL), HINTS_INVALID);
    RC(NULL, hints_delete(NULL, "misc", KEY("k"), NULL), HINTS_INVALID);
    RC(NULL, hints_scan(NULL, "misc", NULL, 0, scan_cb, NULL), HINTS_INVALID);
    RC(NULL, hints_ratelimit(NULL, "1 / 1h / k", -1, 0, NULL, NULL), HINTS_INVALID);
    RC(NULL, hints_seen(NULL, "1h / key=k", -1, 0, NULL), HINTS_INVALID);
    RC(NULL, hints_greylist(NULL, "greylist", KEY("k"), 1, 1, -1, 0, NULL, NULL), HINTS_INVALID);
    RC(NULL, hints_serialize_take(NULL, "misc", KEY("k"), 1, NULL, NULL), HINTS_INVALID);
    RC(NULL, hints_serialize_release(NULL, "misc", KEY("k"), NULL), HINTS_INVALID);
    RC(NULL, hints_counter(NULL, "misc", KEY("k"), 1, 0, -1, 0, NULL), HINTS_INVALID);
    hints_close(NULL);

    /* NULL arguments on a good handle. */
    RC(h, hints_get(h, NULL, KEY("k"), buf, sizeof buf, &len, NULL, NULL), HINTS_INVALID);
    CHECK(strstr(hints_last_error(h), "NULL") != NULL);
    RC(h, hints_get(h, "misc", NULL, 3, buf, sizeof buf, &len, NULL, NULL), HINTS_INVALID);
    RC(h, hints_get(h, "misc", KEY("k"), NULL, 8, &len, NULL, NULL), HINTS_INVALID);
    RC(h, hints_put(h, NULL, KEY("k"), "v", 1, NULL, NULL), HINTS_INVALID);
    RC(h, hints_put(h, "misc", KEY("k"), NULL, 1, NULL, NULL), HINTS_INVALID);
    RC(h, hints_delete(h, NULL, KEY("k"), NULL), HINTS_INVALID);
    RC(h, hints_scan(h, NULL, NULL, 0, scan_cb, NULL), HINTS_INVALID);
    RC(h, hints_scan(h, "misc", NULL, 4, scan_cb, NULL), HINTS_INVALID);
    RC(h, hints_greylist(h, NULL, KEY("k"), 1, 1, -1, 0, NULL, NULL), HINTS_INVALID);
    RC(h, hints_serialize_take(h, "misc", NULL, 1, 1, NULL, NULL), HINTS_INVALID);
    RC(h, hints_serialize_release(h, NULL, KEY("k"), NULL), HINTS_INVALID);
    RC(h, hints_counter(h, "misc", NULL, 2, 1, 0, -1, 0, NULL), HINTS_INVALID);
    /* The handle still works after all that. */
    RC(h, hints_ping(h), HINTS_OK);
}

/*
 * A forked child goes on using its parent's handle: it gets a connection of its own (shown by
 * a serialize slot: the parent's connection holds the only one, so the child's is refused),
 * its put and get work, and the parent's connection is untouched afterwards.
 */
static void test_fork(hints_t *h) {
    int held = -1;
    uint32_t holders = 0;
    RC(h, hints_put(h, "misc", KEY("fork-parent"), "before", 6, NULL, NULL), HINTS_OK);
    RC(h, hints_serialize_take(h, "misc", KEY("fork-slot"), 1, &held, &holders), HINTS_OK);
    CHECK(held == 1);
    /* Taken again on the same connection: still held, still one holder. */
    RC(h, hints_serialize_take(h, "misc", KEY("fork-slot"), 1, &held, &holders), HINTS_OK);
    CHECK(held == 1 && holders == 1);
    fflush(stdout);

    pid_t pid = fork();
    if (pid < 0) {
        printf("FAIL: fork: %s\n", strerror(errno));
        failed++;
        return;
    }
    if (pid == 0) {
        int bad = 0;
        int child_held = -1;
        uint32_t child_holders = 0;
        char buf[16];
        size_t len = 0;
        if (hints_serialize_take(h, "misc", KEY("fork-slot"), 1, &child_held, &child_holders) != HINTS_OK ||
            child_held != 0 || child_holders != 1) {
            printf("FAIL child: the child shared its parent's connection (held %d, holders %u): %s\n", child_held,
                   child_holders, hints_last_error(h));
            bad = 1;
        }
        if (hints_put(h, "misc", KEY("fork-child"), "child", 5, NULL, NULL) != HINTS_OK ||
            hints_get(h, "misc", KEY("fork-child"), buf, sizeof buf, &len, NULL, NULL) != HINTS_OK || len != 5 ||
            memcmp(buf, "child", 5) != 0) {
            printf("FAIL child: put and get: %s\n", hints_last_error(h));
            bad = 1;
        }
        if (hints_get(h, "misc", KEY("fork-parent"), buf, sizeof buf, &len, NULL, NULL) != HINTS_OK || len != 6) {
            printf("FAIL child: reading the parent's record: %s\n", hints_last_error(h));
            bad = 1;
        }
        fflush(stdout);
        _exit(bad ? 3 : 0);
    }
    /* The parent, while the child runs: its own connection is still its own. */
    RC(h, hints_put(h, "misc", KEY("fork-parent-during"), "p", 1, NULL, NULL), HINTS_OK);
    int status = 0;
    pid_t waited;
    do {
        waited = waitpid(pid, &status, 0);
    } while (waited < 0 && errno == EINTR);
    CHECK(waited == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* After the child: the parent's connection (and its slot) are intact. */
    char buf[16];
    size_t len = 0;
    RC(h, hints_get(h, "misc", KEY("fork-child"), buf, sizeof buf, &len, NULL, NULL), HINTS_OK);
    CHECK(len == 5 && memcmp(buf, "child", 5) == 0);
    RC(h, hints_serialize_take(h, "misc", KEY("fork-slot"), 1, &held, &holders), HINTS_OK);
    CHECK(held == 1 && holders == 1);
    RC(h, hints_serialize_release(h, "misc", KEY("fork-slot"), &holders), HINTS_OK);
    CHECK(holders == 0);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
        return 2;
    }
    socket_path = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);

    hints_t *h = open_handle();
    test_strerror();
    test_put_and_get(h);
    test_get_alloc(h);
    test_delete(h);
    test_scan(h);
    test_ratelimit(h);
    test_seen(h);
    test_greylist(h);
    test_serialize(h);
    test_counter(h);
    test_put_if_absent_and_sessions(h);
    test_last_error(h);
    test_nulls(h);
    test_fork(h);
    test_timeouts_and_availability(h);
    hints_close(h);

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
