/* A small epoll WebSocket echo server for mint-websocket's benchmarks (bench/run.py).
 *
 * Build: gcc -O3 -o echo_server echo_server.c
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
 *   the connection is closed). Frames are echoed as they stream in (see "connections"),
 *   so the server never holds a whole frame. Output is queued without bound (up to 1 GiB
 *   per connection) so that a blocking client that writes many frames before reading
 *   does not deadlock against it.
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
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FRAME (16u << 20)
#define MAX_OUT ((size_t)1 << 30)
#define MAX_HANDSHAKE 16384
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
/* Input is read into one shared buffer and echoed as it streams through: a frame's
 * header goes out as soon as it is parsed and its payload follows, unmasked, read by
 * read, so nothing of a large frame is ever held or moved on the input side. Output
 * is a queue of fixed blocks (never moved: an earlier version compacted one growing
 * buffer, and moving the backlog was 40% of the server's CPU in pipelined 1 MiB
 * echo), and spare blocks are kept for the next message (giving them back cost a page
 * fault per 4 KiB touched again: a quarter of the CPU in 1 MiB ping-pong). */
#define BLOCK (256u << 10)
#define SPARE_MAX 512 /* spare blocks kept: 128 MiB, enough for a 100 MiB pipelined window */
#define READ_BUF (256u << 10)
#define IOV_MAX_SEND 16

typedef struct block {
    struct block *next;
    size_t head, len; /* unsent bytes are data[head .. len) */
    unsigned char data[BLOCK];
} block_t;

typedef struct {
    int fd;
    int upgraded;
    int closing;   /* close once the output is written; input is ignored from then */
    int want_out;  /* EPOLLOUT registered */
    /* the handshake, gathered until its blank line (freed once upgraded) */
    unsigned char *hs;
    size_t hs_len;
    /* the frame being read */
    unsigned char hb[14]; /* its header, while incomplete */
    unsigned hn;
    int in_frame;         /* header done, payload bytes to come */
    uint64_t left;        /* payload bytes still to come */
    int masked, drop, close_after;
    unsigned char key[4];
    unsigned koff;        /* offset into the mask key of the next payload byte */
    /* output queue */
    block_t *out_head, *out_tail;
    size_t out_bytes;
} conn_t;

static int epfd;
static volatile sig_atomic_t stop_flag;
static unsigned char read_buf[READ_BUF];
static block_t *spare;
static int spare_n;

static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static block_t *block_new(void) {
    block_t *b = spare;
    if (b) { spare = b->next; spare_n--; }
    else if (!(b = malloc(sizeof *b))) return NULL;
    b->next = NULL; b->head = b->len = 0;
    return b;
}

static void block_free(block_t *b) {
    if (spare_n < SPARE_MAX) { b->next = spare; spare = b; spare_n++; }
    else free(b);
}

static void conn_close(conn_t *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->hs);
    for (block_t *b = c->out_head, *n; b; b = n) { n = b->next; block_free(b); }
    free(c);
}

static void set_events(conn_t *c, int want_out) {
    if (want_out == c->want_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

/* XOR n bytes with the mask key starting at key offset koff; returns the next offset. */
static unsigned unmask_into(unsigned char *dst, const unsigned char *src, size_t n,
                            const unsigned char key[4], unsigned koff) {
    unsigned char k[4];
    for (int i = 0; i < 4; i++) k[i] = key[(koff + (unsigned)i) & 3];
    uint32_t k32; memcpy(&k32, k, 4);
    uint64_t k64 = ((uint64_t)k32 << 32) | k32;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) { uint64_t v; memcpy(&v, src + i, 8); v ^= k64; memcpy(dst + i, &v, 8); }
    for (; i < n; i++) dst[i] = src[i] ^ k[i & 3];
    return (unsigned)((koff + n) & 3);
}

/* Queue n bytes for the peer, unmasked with c's key when mask is set. 0 ok, -1 fail. */
static int out_put(conn_t *c, const unsigned char *src, size_t n, int mask) {
    if (c->out_bytes + n > MAX_OUT) return -1;
    while (n) {
        block_t *t = c->out_tail;
        if (!t || t->len == BLOCK) {
            block_t *b = block_new();
            if (!b) return -1;
            if (t) t->next = b; else c->out_head = b;
            c->out_tail = t = b;
        }
        size_t take = BLOCK - t->len;
        if (take > n) take = n;
        if (mask) c->koff = unmask_into(t->data + t->len, src, take, c->key, c->koff);
        else memcpy(t->data + t->len, src, take);
        t->len += take; c->out_bytes += take;
        src += take; n -= take;
    }
    return 0;
}

/* Write what we can; 0 ok, -1 the connection must go. */
static int flush_out(conn_t *c) {
    while (c->out_head) {
        struct iovec iov[IOV_MAX_SEND];
        int k = 0;
        for (block_t *b = c->out_head; b && k < IOV_MAX_SEND; b = b->next) {
            iov[k].iov_base = b->data + b->head; iov[k].iov_len = b->len - b->head; k++;
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)k};
        ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            return -1;
        }
        c->out_bytes -= (size_t)w;
        while (w > 0) {
            block_t *b = c->out_head;
            size_t have = b->len - b->head;
            if ((size_t)w < have) { b->head += (size_t)w; break; }
            w -= (ssize_t)have;
            c->out_head = b->next;
            if (!c->out_head) c->out_tail = NULL;
            block_free(b);
        }
    }
    if (!c->out_bytes && c->closing) return -1;
    set_events(c, c->out_bytes != 0);
    return 0;
}

/* The opening handshake, from c->hs. 1 = done (leftover frame bytes at *rest), 0 = need
 * more, -1 = fail. */
static int handshake(conn_t *c, size_t *rest) {
    unsigned char *p = c->hs;
    size_t n = c->hs_len;
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
    *rest = n - hlen;
    if (!key || klen > 64) {
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        if (out_put(c, (const unsigned char *)bad, sizeof bad - 1, 0)) return -1;
        c->closing = 1;
        *rest = 0;
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
    if (out_put(c, (const unsigned char *)resp, (size_t)rl, 0)) return -1;
    c->upgraded = 1;
    return 1;
}

/* A frame's header is complete in c->hb: queue the answer's header. 0 ok, -1 fail. */
static int start_frame(conn_t *c, unsigned h, uint64_t len) {
    unsigned b0 = c->hb[0], op = b0 & 0x0F;
    c->masked = c->hb[1] & 0x80;
    if (c->masked) memcpy(c->key, c->hb + h - 4, 4);
    c->koff = 0;
    c->drop = op == 0xA;                 /* pong: nothing to answer */
    c->close_after = op == 0x8;          /* close -> close, then hang up */
    if (op == 0x9) b0 = 0x80 | 0xA;      /* ping -> pong */
    else if (op == 0x8) b0 = 0x80 | 0x8;
    c->left = len;
    c->in_frame = 1;
    c->hn = 0;
    if (c->drop) return 0;
    unsigned char hdr[10];
    size_t hl;
    hdr[0] = (unsigned char)b0;
    if (len < 126) { hdr[1] = (unsigned char)len; hl = 2; }
    else if (len < 65536) { hdr[1] = 126; hdr[2] = (unsigned char)(len >> 8); hdr[3] = (unsigned char)len; hl = 4; }
    else { hdr[1] = 127; for (int i = 0; i < 8; i++) hdr[2 + i] = (unsigned char)(len >> (56 - 8 * i)); hl = 10; }
    return out_put(c, hdr, hl, 0);
}

/* Echo the frame bytes p[0..n) as they stream in. 0 ok, -1 fail. */
static int process_frames(conn_t *c, const unsigned char *p, size_t n) {
    while (n && !c->closing) {
        if (!c->in_frame) {
            /* gather the header: 2 bytes, then as many as its length field says */
            unsigned need = 2;
            if (c->hn >= 2) {
                unsigned l7 = c->hb[1] & 0x7F;
                need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((c->hb[1] & 0x80) ? 4 : 0);
            }
            while (c->hn < need && n) {
                c->hb[c->hn++] = *p++; n--;
                if (c->hn == 2) {
                    unsigned l7 = c->hb[1] & 0x7F;
                    need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((c->hb[1] & 0x80) ? 4 : 0);
                }
            }
            if (c->hn < need) return 0;
            unsigned l7 = c->hb[1] & 0x7F;
            uint64_t len = l7;
            if (l7 == 126) len = (uint64_t)c->hb[2] << 8 | c->hb[3];
            else if (l7 == 127) { len = 0; for (int i = 0; i < 8; i++) len = len << 8 | c->hb[2 + i]; }
            if (len > MAX_FRAME) return -1;
            if (start_frame(c, need, len)) return -1;
        }
        size_t take = c->left < n ? (size_t)c->left : n;
        if (!c->drop && take && out_put(c, p, take, c->masked)) return -1;
        p += take; n -= take; c->left -= take;
        if (!c->left) {
            c->in_frame = 0;
            if (c->close_after) c->closing = 1;
        }
    }
    return 0;
}

static int on_readable(conn_t *c) {
    for (int rounds = 0; rounds < 64 && !c->closing; rounds++) {
        ssize_t r = recv(c->fd, read_buf, READ_BUF, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            return -1;
        }
        if (r == 0) return -1;
        const unsigned char *p = read_buf;
        size_t n = (size_t)r;
        if (!c->upgraded) {
            unsigned char *hs = realloc(c->hs, c->hs_len + n);
            if (!hs) return -1;
            memcpy(hs + c->hs_len, p, n);
            c->hs = hs; c->hs_len += n;
            size_t rest = 0;
            int h = handshake(c, &rest);
            if (h < 0) return -1;
            if (h == 0) continue;
            /* frame bytes that came with the request: copy them out before freeing hs */
            if (rest) { memmove(read_buf, hs + c->hs_len - rest, rest); }
            free(c->hs); c->hs = NULL; c->hs_len = 0;
            p = read_buf; n = rest;
        }
        if (c->upgraded && process_frames(c, p, n)) return -1;
        if ((size_t)r < READ_BUF) break; /* drained */
    }
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
