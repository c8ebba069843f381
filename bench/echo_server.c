/* A small epoll WebSocket echo server for mint-websocket's benchmarks (bench/run.py).
 *
 * Build: gcc -O2 -o echo_server echo_server.c
 * Run:   echo_server [PORT]   (0 or none: the OS picks; prints "READY <port>" once listening)
 *
 * - HTTP/1.1 upgrade (RFC 6455 4.2.2): Sec-WebSocket-Accept = base64(SHA-1(key + GUID)),
 *   SHA-1 and base64 implemented here (no OpenSSL). No extension is negotiated.
 * - Client frames are unmasked and echoed as unmasked server frames of the same opcode
 *   (FIN and RSV bits kept, so fragments echo as fragments); pings are answered with
 *   pongs carrying the same payload, pongs are dropped, a Close is answered with a Close
 *   carrying the same payload and the connection is closed once that is written.
 * - Level-triggered epoll, non-blocking sockets, any number of connections (RLIMIT_NOFILE
 *   is raised to its hard limit), partial reads and writes, frames up to 16 MiB (larger:
 *   the connection is closed). Output is buffered without bound (up to 1 GiB per
 *   connection) so that a blocking client that writes many frames before reading does
 *   not deadlock against it.
 * - Stops on SIGTERM/SIGINT or when stdin reaches end of file (a dead harness never
 *   leaves it behind).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FRAME (16u << 20)
#define MAX_OUT ((size_t)1 << 30)
#define MAX_HANDSHAKE 16384
#define READ_CHUNK 65536
#define MAX_EVENTS 512

/* ---------------------------------------------------------------- SHA-1 (FIPS 180-4) */
typedef struct {
    uint32_t h[5];
    uint64_t len;
    unsigned char buf[64];
    size_t used;
} sha1_ctx;

#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

static void sha1_block(sha1_ctx *c, const unsigned char *p) {
    uint32_t w[80], a, b, d, e, f, k, t, cc;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    a = c->h[0]; b = c->h[1]; cc = c->h[2]; d = c->h[3]; e = c->h[4];
    for (int i = 0; i < 80; i++) {
        if (i < 20) { f = (b & cc) | (~b & d); k = 0x5A827999; }
        else if (i < 40) { f = b ^ cc ^ d; k = 0x6ED9EBA1; }
        else if (i < 60) { f = (b & cc) | (b & d) | (cc & d); k = 0x8F1BBCDC; }
        else { f = b ^ cc ^ d; k = 0xCA62C1D6; }
        t = ROL(a, 5) + f + e + k + w[i];
        e = d; d = cc; cc = ROL(b, 30); b = a; a = t;
    }
    c->h[0] += a; c->h[1] += b; c->h[2] += cc; c->h[3] += d; c->h[4] += e;
}

static void sha1_init(sha1_ctx *c) {
    c->h[0] = 0x67452301; c->h[1] = 0xEFCDAB89; c->h[2] = 0x98BADCFE;
    c->h[3] = 0x10325476; c->h[4] = 0xC3D2E1F0;
    c->len = 0; c->used = 0;
}

static void sha1_update(sha1_ctx *c, const void *data, size_t n) {
    const unsigned char *p = data;
    c->len += n;
    while (n) {
        size_t take = 64 - c->used;
        if (take > n) take = n;
        memcpy(c->buf + c->used, p, take);
        c->used += take; p += take; n -= take;
        if (c->used == 64) { sha1_block(c, c->buf); c->used = 0; }
    }
}

static void sha1_final(sha1_ctx *c, unsigned char out[20]) {
    uint64_t bits = c->len * 8;
    unsigned char pad = 0x80, zero = 0, lenb[8];
    sha1_update(c, &pad, 1);
    while (c->used != 56) sha1_update(c, &zero, 1);
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha1_update(c, lenb, 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = c->h[i] >> 24; out[4 * i + 1] = c->h[i] >> 16;
        out[4 * i + 2] = c->h[i] >> 8; out[4 * i + 3] = c->h[i];
    }
}

/* ---------------------------------------------------------------- base64 (RFC 4648) */
static size_t base64(const unsigned char *in, size_t n, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18]; out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63]; out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tab[v >> 18]; out[o++] = tab[(v >> 12) & 63]; out[o++] = '='; out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tab[v >> 18]; out[o++] = tab[(v >> 12) & 63]; out[o++] = tab[(v >> 6) & 63]; out[o++] = '=';
    }
    out[o] = 0;
    return o;
}

/* ---------------------------------------------------------------- connections */
typedef struct {
    unsigned char *p;
    size_t head, len, cap; /* live bytes are p[head .. head+len) */
} buf_t;

typedef struct {
    int fd;
    int upgraded;
    int closing;   /* close once the output is written */
    int want_out;  /* EPOLLOUT registered */
    buf_t in, out;
} conn_t;

static int epfd;
static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static int buf_reserve(buf_t *b, size_t extra) {
    if (b->head && (b->head + b->len + extra > b->cap || b->head > b->cap / 2)) {
        memmove(b->p, b->p + b->head, b->len);
        b->head = 0;
    }
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p; b->cap = cap;
    return 0;
}

static void buf_consume(buf_t *b, size_t n) {
    b->head += n; b->len -= n;
    if (!b->len) b->head = 0;
}

static void buf_free(buf_t *b) { free(b->p); b->p = NULL; b->head = b->len = b->cap = 0; }

static void conn_close(conn_t *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    buf_free(&c->in); buf_free(&c->out);
    free(c);
}

static void set_events(conn_t *c, int want_out) {
    if (want_out == c->want_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

/* Write what we can; 0 ok, -1 the connection must go. */
static int flush_out(conn_t *c) {
    while (c->out.len) {
        ssize_t w = send(c->fd, c->out.p + c->out.head, c->out.len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            return -1;
        }
        buf_consume(&c->out, (size_t)w);
    }
    if (!c->out.len && c->closing) return -1;
    set_events(c, c->out.len != 0);
    if (!c->out.len && c->out.cap > (1u << 20)) buf_free(&c->out); /* give big buffers back */
    return 0;
}

static int append_frame(conn_t *c, unsigned b0, const unsigned char *payload, size_t n,
                        const unsigned char *key) {
    unsigned char hdr[10];
    size_t h;
    hdr[0] = (unsigned char)b0;
    if (n < 126) { hdr[1] = (unsigned char)n; h = 2; }
    else if (n < 65536) { hdr[1] = 126; hdr[2] = n >> 8; hdr[3] = n; h = 4; }
    else { hdr[1] = 127; for (int i = 0; i < 8; i++) hdr[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i)); h = 10; }
    if (c->out.len + h + n > MAX_OUT) return -1;
    if (buf_reserve(&c->out, h + n)) return -1;
    unsigned char *dst = c->out.p + c->out.head + c->out.len;
    memcpy(dst, hdr, h);
    dst += h;
    if (key) {
        uint32_t k32; memcpy(&k32, key, 4);
        uint64_t k64 = ((uint64_t)k32 << 32) | k32;
        size_t i = 0;
        for (; i + 8 <= n; i += 8) { uint64_t v; memcpy(&v, payload + i, 8); v ^= k64; memcpy(dst + i, &v, 8); }
        for (; i < n; i++) dst[i] = payload[i] ^ key[i & 3];
    } else if (n) {
        memcpy(dst, payload, n);
    }
    c->out.len += h + n;
    return 0;
}

/* The opening handshake. 1 = done, 0 = need more, -1 = fail. */
static int handshake(conn_t *c) {
    unsigned char *p = c->in.p + c->in.head;
    size_t n = c->in.len;
    unsigned char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end) return n > MAX_HANDSHAKE ? -1 : 0;
    size_t hlen = (size_t)(end - p) + 4;
    const char *key = NULL; size_t klen = 0;
    for (unsigned char *line = memmem(p, hlen, "\r\n", 2); line && line + 2 < end;) {
        line += 2;
        unsigned char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        if (!eol) break;
        size_t ll = (size_t)(eol - line);
        if (ll > 18 && strncasecmp((const char *)line, "sec-websocket-key:", 18) == 0) {
            const unsigned char *v = line + 18, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            key = (const char *)v; klen = (size_t)(ve - v);
        }
        line = eol;
    }
    if (!key || klen > 64) {
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        buf_reserve(&c->out, sizeof bad);
        memcpy(c->out.p + c->out.head + c->out.len, bad, sizeof bad - 1);
        c->out.len += sizeof bad - 1;
        c->closing = 1;
        buf_consume(&c->in, n);
        return 1;
    }
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    sha1_ctx s; unsigned char dig[20]; char acc[32];
    sha1_init(&s); sha1_update(&s, key, klen); sha1_update(&s, guid, sizeof guid - 1); sha1_final(&s, dig);
    base64(dig, 20, acc);
    char resp[256];
    int rl = snprintf(resp, sizeof resp,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n", acc);
    if (buf_reserve(&c->out, (size_t)rl)) return -1;
    memcpy(c->out.p + c->out.head + c->out.len, resp, (size_t)rl);
    c->out.len += (size_t)rl;
    buf_consume(&c->in, hlen);
    c->upgraded = 1;
    return 1;
}

/* Echo every complete frame in the input. 0 ok, -1 fail. */
static int process_frames(conn_t *c) {
    while (c->in.len >= 2 && !c->closing) {
        unsigned char *p = c->in.p + c->in.head;
        size_t n = c->in.len;
        unsigned b0 = p[0], b1 = p[1];
        int masked = b1 & 0x80;
        uint64_t len = b1 & 0x7F;
        size_t h = 2;
        if (len == 126) {
            if (n < 4) return 0;
            len = (uint64_t)p[2] << 8 | p[3]; h = 4;
        } else if (len == 127) {
            if (n < 10) return 0;
            len = 0; for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
            h = 10;
        }
        if (len > MAX_FRAME) return -1;
        if (masked) h += 4;
        if (n < h + len) {
            /* make room for the whole frame at once: fewer reallocs and reads */
            if (buf_reserve(&c->in, h + len - n + READ_CHUNK)) return -1;
            return 0;
        }
        const unsigned char *key = masked ? p + h - 4 : NULL;
        const unsigned char *payload = p + h;
        unsigned op = b0 & 0x0F;
        if (op == 0x9) {            /* ping -> pong */
            if (append_frame(c, 0x80 | 0xA, payload, (size_t)len, key)) return -1;
        } else if (op == 0xA) {     /* pong: nothing to do */
        } else if (op == 0x8) {     /* close -> close, then hang up */
            if (append_frame(c, 0x80 | 0x8, payload, (size_t)len, key)) return -1;
            c->closing = 1;
        } else {
            if (append_frame(c, b0, payload, (size_t)len, key)) return -1;
        }
        buf_consume(&c->in, h + (size_t)len);
    }
    return 0;
}

static int on_readable(conn_t *c) {
    for (int rounds = 0; rounds < 64; rounds++) {
        if (buf_reserve(&c->in, READ_CHUNK)) return -1;
        size_t room = c->in.cap - c->in.head - c->in.len;
        ssize_t r = recv(c->fd, c->in.p + c->in.head + c->in.len, room, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            return -1;
        }
        if (r == 0) return -1;
        c->in.len += (size_t)r;
        if (!c->upgraded) {
            int h = handshake(c);
            if (h < 0) return -1;
        }
        if (c->upgraded && process_frames(c)) return -1;
        if ((size_t)r < room) break; /* drained */
    }
    if (!c->in.len && c->in.cap > (1u << 20)) buf_free(&c->in);
    return flush_out(c);
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 65535)) { perror("listen"); return 1; }
    socklen_t al = sizeof addr;
    getsockname(lfd, (struct sockaddr *)&addr, &al);

    epfd = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
    /* stdin: its end of file stops the server */
    static int stdin_tag;
    int watch_stdin = 1;
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &stdin_tag};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &sev)) watch_stdin = 0; /* e.g. /dev/null: not pollable */
    (void)watch_stdin;

    printf("READY %d\n", ntohs(addr.sin_port));
    fflush(stdout);

    struct epoll_event events[MAX_EVENTS];
    while (!stop_flag) {
        int k = epoll_wait(epfd, events, MAX_EVENTS, 1000);
        if (k < 0) { if (errno == EINTR) continue; perror("epoll_wait"); break; }
        for (int i = 0; i < k; i++) {
            void *tag = events[i].data.ptr;
            if (tag == NULL) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                    if (fd < 0) break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn_t *c = calloc(1, sizeof *c);
                    if (!c) { close(fd); continue; }
                    c->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &cev)) { close(fd); free(c); }
                }
                continue;
            }
            if (tag == &stdin_tag) {
                char tmp[256];
                ssize_t r = read(0, tmp, sizeof tmp);
                if (r <= 0) stop_flag = 1;
                continue;
            }
            conn_t *c = tag;
            uint32_t e = events[i].events;
            int dead = 0;
            if (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) dead = on_readable(c);
            else if (e & EPOLLOUT) dead = flush_out(c);
            if (dead) conn_close(c);
        }
    }
    close(lfd);
    return 0;
}
