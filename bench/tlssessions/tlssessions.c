/*
 * tlssessions is an LD_PRELOAD shim for wrk (bench/compare.sh, issue 26): it counts
 * the TLS handshakes wrk makes, full and resumed, and can make every one full.
 *
 * wrk keeps a connection's TLS session when it reconnects (ssl_close calls
 * SSL_shutdown then SSL_clear, which keeps a cleanly shut session), so with
 * "Connection: close" it resumes every handshake after a connection's first, by
 * session ticket, against any server that issues tickets. TLS 1.3 resumption still
 * runs the key exchange (psk_dhe_ke) but skips the certificate and its signature.
 *
 *   TLS_SESSIONS=off          forget the session on every reconnect: full handshakes
 *   TLS_HANDSHAKES_FILE=path  at exit, write "full N resumed M" there
 *
 * Build: cc -shared -fPIC -O2 -o tlssessions.so tlssessions.c -ldl
 * Use:   LD_PRELOAD=./tlssessions.so TLS_SESSIONS=off wrk -H "Connection: close" https://...
 *
 * Only libssl's symbols are declared here, so it builds without OpenSSL's headers.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;

static int (*real_clear)(SSL *);
static int (*real_connect)(SSL *);
static int (*set_session)(SSL *, SSL_SESSION *);
static int (*session_reused)(const SSL *);
static int forget;
static unsigned long full, resumed;

__attribute__((constructor)) static void init(void) {
    real_clear = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_clear");
    real_connect = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_connect");
    set_session = (int (*)(SSL *, SSL_SESSION *))dlsym(RTLD_NEXT, "SSL_set_session");
    session_reused = (int (*)(const SSL *))dlsym(RTLD_NEXT, "SSL_session_reused");
    const char *v = getenv("TLS_SESSIONS");
    forget = v != NULL && strcmp(v, "off") == 0;
}

__attribute__((destructor)) static void report(void) {
    const char *path = getenv("TLS_HANDSHAKES_FILE");
    if (path == NULL) {
        return;
    }
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fprintf(f, "full %lu resumed %lu\n", __atomic_load_n(&full, __ATOMIC_RELAXED),
                __atomic_load_n(&resumed, __ATOMIC_RELAXED));
        fclose(f);
    }
}

int SSL_clear(SSL *s) {
    if (forget) {
        set_session(s, NULL); /* the next SSL_connect starts without a session */
    }
    return real_clear(s);
}

int SSL_connect(SSL *s) {
    int r = real_connect(s);
    if (r == 1) { /* the handshake completed (wrk's sockets are non-blocking) */
        __atomic_fetch_add(session_reused(s) ? &resumed : &full, 1, __ATOMIC_RELAXED);
    }
    return r;
}
