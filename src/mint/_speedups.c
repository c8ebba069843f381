/* Optional C speedups for mint's WebSocket codec.
 *
 * mask(data, key) -> bytes: RFC 6455 5.3 masking (XOR with a repeating 4-byte key).
 * frame(b0, payload, pool, at) -> bytes: a whole masked client frame in one allocation.
 * scan(buf, pos, out, max_frame, max_message) -> int: the decoder's common case in one
 * call (whole, unfragmented, unmasked text and binary frames without RSV bits).
 * encode(ws, frame) and decode(ws, data): mint.websocket's own, their common case in C
 * and the rest handed to the Python functions (entry_setup() names them).
 * The pure-Python fallback in mint.websocket._frame is used when this module is
 * absent; both are covered by the same tests (MINT_NO_SPEEDUPS=1 forces the fallback).
 * The loop works on 8-byte words so the compiler can vectorise it; memcpy keeps the
 * unaligned loads and stores well-defined.
 */
#include "_slots.h"
#include <stdint.h>
#include <string.h>

/* XOR n bytes of src with the repeating key k into dst (dst may equal src). */
static void
xor_mask(const unsigned char *src, unsigned char *dst, Py_ssize_t n, const unsigned char *k)
{
    Py_ssize_t i = 0;
    uint32_t k32;
    memcpy(&k32, k, 4);
    uint64_t k64 = ((uint64_t)k32 << 32) | k32;
    for (; i + 32 <= n; i += 32) {
        uint64_t a, b, c, d;
        memcpy(&a, src + i, 8);
        memcpy(&b, src + i + 8, 8);
        memcpy(&c, src + i + 16, 8);
        memcpy(&d, src + i + 24, 8);
        a ^= k64; b ^= k64; c ^= k64; d ^= k64;
        memcpy(dst + i, &a, 8);
        memcpy(dst + i + 8, &b, 8);
        memcpy(dst + i + 16, &c, 8);
        memcpy(dst + i + 24, &d, 8);
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t a;
        memcpy(&a, src + i, 8);
        a ^= k64;
        memcpy(dst + i, &a, 8);
    }
    for (; i < n; i++) {
        dst[i] = src[i] ^ k[i & 3];
    }
}

/* Below this many bytes, releasing the GIL costs more than the XOR. */
#define NOGIL_MIN 65536

static PyObject *
mask(PyObject *self, PyObject *args)
{
    Py_buffer data, key;
    if (!PyArg_ParseTuple(args, "y*y*:mask", &data, &key)) {
        return NULL;
    }
    if (key.len != 4) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&key);
        PyErr_SetString(PyExc_ValueError, "mask key must be 4 bytes");
        return NULL;
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&key);
        return NULL;
    }
    const unsigned char *src = (const unsigned char *)data.buf;
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(result);
    unsigned char k[4];
    memcpy(k, key.buf, 4);
    Py_ssize_t n = data.len;
    if (n >= NOGIL_MIN) {
        Py_BEGIN_ALLOW_THREADS
        xor_mask(src, dst, n, k);
        Py_END_ALLOW_THREADS
    } else {
        xor_mask(src, dst, n, k);
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&key);
    return result;
}

static PyObject *build_frame(unsigned char b0, PyObject *payload, PyObject *pool,
                             Py_ssize_t at);

/* frame(b0, payload, pool, at) -> bytes: one masked client frame (RFC 6455 5.2, 5.3),
 * header + key + masked payload in one allocation; the key is pool[at:at + 4]. */
static PyObject *
frame(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "frame(b0, payload, pool, at) takes 4 arguments");
        return NULL;
    }
    long b0 = PyLong_AsLong(args[0]);
    if (b0 == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *payload = args[1], *pool = args[2];
    if (!PyBytes_Check(payload) || !PyBytes_Check(pool)) {
        PyErr_SetString(PyExc_TypeError, "frame: payload and pool must be bytes");
        return NULL;
    }
    Py_ssize_t at = PyLong_AsSsize_t(args[3]);
    if (at == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (b0 < 0 || b0 > 255 || at < 0 || at > PyBytes_GET_SIZE(pool) - 4) {
        PyErr_SetString(PyExc_ValueError, "frame: bad first byte or key position");
        return NULL;
    }
    return build_frame((unsigned char)b0, payload, pool, at);
}

/* The frame of frame() and encode(): payload and pool are bytes, pool[at:at + 4] is in
 * range (checked by the callers). */
static PyObject *
build_frame(unsigned char b0, PyObject *payload, PyObject *pool, Py_ssize_t at)
{
    Py_ssize_t n = PyBytes_GET_SIZE(payload);
    Py_ssize_t head = n < 126 ? 2 : (n < 65536 ? 4 : 10);
    PyObject *result = PyBytes_FromStringAndSize(NULL, head + 4 + n);
    if (result == NULL) {
        return NULL;
    }
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(result);
    dst[0] = b0;
    if (head == 2) {
        dst[1] = (unsigned char)(0x80 | n);
    } else if (head == 4) {
        dst[1] = 0x80 | 126;
        dst[2] = (unsigned char)(n >> 8);
        dst[3] = (unsigned char)n;
    } else {
        uint64_t len = (uint64_t)n;
        dst[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++) {
            dst[2 + i] = (unsigned char)(len >> (56 - 8 * i));
        }
    }
    unsigned char k[4];
    memcpy(k, PyBytes_AS_STRING(pool) + at, 4);
    memcpy(dst + head, k, 4);
    const unsigned char *src = (const unsigned char *)PyBytes_AS_STRING(payload);
    if (n >= NOGIL_MIN) {
        Py_BEGIN_ALLOW_THREADS
        xor_mask(src, dst + head + 4, n, k);
        Py_END_ALLOW_THREADS
    } else {
        xor_mask(src, dst + head + 4, n, k);
    }
    return result;
}

/* The frame types scan() builds, and their ``data`` slot descriptors (set once by
 * setup(); the frames are frozen dataclasses, so the slot is set through its
 * descriptor, as mint.websocket._frame does in Python). */
static PyObject *binary_type, *binary_slot, *text_type, *text_slot;

static PyObject *
setup(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "setup(Binary, Binary.data, Text, Text.data)");
        return NULL;
    }
    for (int i = 0; i < 4; i += 2) {
        if (!PyType_Check(args[i]) || Py_TYPE(args[i + 1])->tp_descr_set == NULL) {
            PyErr_SetString(PyExc_TypeError, "setup: a type and its slot descriptor, twice");
            return NULL;
        }
    }
    PyObject *olds[4] = {binary_type, binary_slot, text_type, text_slot};
    Py_INCREF(args[0]);
    Py_INCREF(args[1]);
    Py_INCREF(args[2]);
    Py_INCREF(args[3]);
    binary_type = args[0];
    binary_slot = args[1];
    text_type = args[2];
    text_slot = args[3];
    for (int i = 0; i < 4; i++) {
        Py_XDECREF(olds[i]);
    }
    Py_RETURN_NONE;
}

/* A new instance of type with its data slot set to value (a new reference). */
static PyObject *
new_frame(PyObject *type, PyObject *slot, PyObject *value)
{
    PyTypeObject *tp = (PyTypeObject *)type;
    PyObject *obj = tp->tp_alloc(tp, 0);
    if (obj == NULL) {
        return NULL;
    }
    if (slot_store(slot, obj, value) < 0) {
        Py_DECREF(obj);
        return NULL;
    }
    return obj;
}

/* ---- frame construction ---------------------------------------------------------
 *
 * A caller builds a frame for every message it sends (Binary(data)), and calling a
 * class whose __init__ is Python costs a Python frame entered from C: about 210 ns,
 * more than encoding the frame. constructor() gives one of the frame classes a
 * vectorcall entry (PyTypeObject.tp_vectorcall, which the interpreter calls for the
 * class itself and which subclasses never inherit): positional arguments, as many as
 * the class has fields or as few as it has required ones, are stored straight into
 * the slots. Any other call (keywords, a wrong count), or any call once the class's
 * __init__ or __new__ is not the one it had when set up (a patch), goes through
 * type.__call__, so __new__ and __init__ run and raise exactly as without this module. */
#define N_CTORS 16
#define MAX_FIELDS 4
static struct {
    PyTypeObject *type;
    int nfields, nrequired;
    PyObject *init; /* the class's __init__ when set up (held: its address stays its own) */
    PyObject *slots[MAX_FIELDS];
    PyObject *defaults[MAX_FIELDS];
} ctors[N_CTORS];
static int n_ctors;
static PyObject *str_init;

static PyObject *
construct_slow(PyObject *callable, PyObject *const *args, size_t nargs, PyObject *kwnames)
{
    PyObject *tuple = PyTuple_New((Py_ssize_t)nargs), *kwargs = NULL, *result = NULL;
    if (tuple == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(tuple, (Py_ssize_t)i, args[i]);
    }
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
        kwargs = PyDict_New();
        if (kwargs == NULL) {
            goto done;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
                goto done;
            }
        }
    }
    result = PyType_Type.tp_call(callable, tuple, kwargs);
done:
    Py_DECREF(tuple);
    Py_XDECREF(kwargs);
    return result;
}

static PyObject *
construct(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    size_t nargs = PyVectorcall_NARGS(nargsf);
    int c = 0;
    while (c < n_ctors && (PyObject *)ctors[c].type != callable) {
        c++;
    }
    if (c == n_ctors || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)
        || nargs < (size_t)ctors[c].nrequired || nargs > (size_t)ctors[c].nfields) {
        return construct_slow(callable, args, nargs, kwnames);
    }
    PyTypeObject *tp = ctors[c].type;
    if (tp->tp_new != PyBaseObject_Type.tp_new || _PyType_Lookup(tp, str_init) != ctors[c].init) {
        return construct_slow(callable, args, nargs, kwnames);
    }
    PyObject *obj = tp->tp_alloc(tp, 0);
    if (obj == NULL) {
        return NULL;
    }
    for (int i = 0; i < ctors[c].nfields; i++) {
        PyObject *v = (size_t)i < nargs ? args[i] : ctors[c].defaults[i];
        if (slot_store(ctors[c].slots[i], obj, v) < 0) {
            Py_DECREF(obj);
            return NULL;
        }
    }
    return obj;
}

/* constructor(cls, slots, defaults): calls of cls store their positional arguments in
 * the slot descriptors ``slots`` (a tuple, in field order); ``defaults`` fills the
 * last fields when fewer arguments are given (a tuple, aligned to the end). */
static PyObject *
constructor(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyType_Check(args[0]) || !PyTuple_CheckExact(args[1])
        || !PyTuple_CheckExact(args[2]) || PyTuple_GET_SIZE(args[1]) > MAX_FIELDS
        || PyTuple_GET_SIZE(args[2]) > PyTuple_GET_SIZE(args[1])) {
        PyErr_SetString(PyExc_TypeError, "constructor(cls, slots, defaults)");
        return NULL;
    }
    PyTypeObject *tp = (PyTypeObject *)args[0];
    if (tp->tp_new != PyBaseObject_Type.tp_new || !(tp->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        PyErr_SetString(PyExc_TypeError, "constructor: a class with object's __new__");
        return NULL;
    }
    if (str_init == NULL && (str_init = PyUnicode_InternFromString("__init__")) == NULL) {
        return NULL;
    }
    PyObject *init = _PyType_Lookup(tp, str_init);
    if (init == NULL || !PyFunction_Check(init)) {
        PyErr_SetString(PyExc_TypeError, "constructor: a class with a Python __init__");
        return NULL;
    }
    int nfields = (int)PyTuple_GET_SIZE(args[1]);
    int ndefaults = (int)PyTuple_GET_SIZE(args[2]);
    for (int i = 0; i < nfields; i++) {
        PyObject *d = PyTuple_GET_ITEM(args[1], i);
        if (Py_TYPE(d)->tp_descr_set == NULL) {
            PyErr_SetString(PyExc_TypeError, "constructor: slots must be slot descriptors");
            return NULL;
        }
    }
    int c = 0;
    while (c < n_ctors && ctors[c].type != tp) {
        c++;
    }
    if (c == N_CTORS) {
        PyErr_SetString(PyExc_RuntimeError, "constructor: too many classes");
        return NULL;
    }
    if (c == n_ctors) {
        Py_INCREF(tp);
        ctors[c].type = tp;
        n_ctors++;
    }
    Py_INCREF(init);
    Py_XSETREF(ctors[c].init, init);
    ctors[c].nfields = nfields;
    ctors[c].nrequired = nfields - ndefaults;
    for (int i = 0; i < MAX_FIELDS; i++) {
        PyObject *slot = i < nfields ? PyTuple_GET_ITEM(args[1], i) : NULL;
        PyObject *dflt = i >= nfields - ndefaults && i < nfields
                             ? PyTuple_GET_ITEM(args[2], i - (nfields - ndefaults))
                             : NULL;
        Py_XINCREF(slot);
        Py_XSETREF(ctors[c].slots[i], slot);
        Py_XINCREF(dflt);
        Py_XSETREF(ctors[c].defaults[i], dflt);
    }
    tp->tp_vectorcall = construct;
    Py_RETURN_NONE;
}

static int limit_of(PyObject *a, PyObject *b, uint64_t *limit);
static Py_ssize_t scan_run(PyObject *bufobj, Py_ssize_t pos, PyObject *out, uint64_t limit);

/* scan(buf, pos, out, max_frame, max_message) -> int
 *
 * Decodes, from buf[pos:], the frames that need no state and no judgement: whole
 * FIN text or binary frames, RSV bits clear, unmasked, within the limits (-1: none),
 * text valid UTF-8. It appends Text/Binary to out and returns where it stopped: at
 * the end, at an incomplete frame, or at the first frame that is anything else
 * (control, fragment, RSV, a bad header, bad UTF-8, over a limit), which the Python
 * decoder then handles, errors included, exactly as without this function. The
 * caller only uses it with no message in progress and no extension that sees every
 * message. */
static PyObject *
scan(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "scan(buf, pos, out, max_frame, max_message)");
        return NULL;
    }
    PyObject *bufobj = args[0], *out = args[2];
    if (!PyBytes_Check(bufobj) || !PyList_Check(out)) {
        PyErr_SetString(PyExc_TypeError, "scan: buf must be bytes and out a list");
        return NULL;
    }
    if (binary_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "scan: setup() was not called");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) {
        return NULL;
    }
    uint64_t limit;
    if (limit_of(args[3], args[4], &limit) < 0) {
        return NULL;
    }
    if (pos < 0 || pos > PyBytes_GET_SIZE(bufobj)) {
        PyErr_SetString(PyExc_ValueError, "scan: pos out of range");
        return NULL;
    }
    pos = scan_run(bufobj, pos, out, limit);
    return pos < 0 ? NULL : PyLong_FromSsize_t(pos);
}

/* The smaller of two limits (ints; -1, or one past 2**63: none) as an unsigned bound. */
static int
limit_of(PyObject *a, PyObject *b, uint64_t *limit)
{
    PyObject *limits[2] = {a, b};
    *limit = UINT64_MAX;
    for (int i = 0; i < 2; i++) {
        int overflow = 0;
        long long value = PyLong_AsLongLongAndOverflow(limits[i], &overflow);
        if (value == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (!overflow && value >= 0 && (uint64_t)value < *limit) {
            *limit = (uint64_t)value;
        }
    }
    return 0;
}

/* The header at buf[pos:] (n bytes in all) of an unmasked FIN text or binary frame
 * with no RSV bits (what the C decoder takes): 1 with its payload's length and start
 * when the header is whole and its length minimally encoded, else 0 (the Python loop
 * reads it, errors included). */
static int
simple_header(const unsigned char *buf, Py_ssize_t n, Py_ssize_t pos, uint64_t *len,
              Py_ssize_t *start)
{
    if (n - pos < 2 || (buf[pos] != 0x81 && buf[pos] != 0x82) || (buf[pos + 1] & 0x80)) {
        return 0;
    }
    *len = buf[pos + 1] & 0x7F;
    if (*len < 126) {
        *start = pos + 2;
    }
    else if (*len == 126) {
        if (n - pos < 4 || (*len = ((uint64_t)buf[pos + 2] << 8) | buf[pos + 3]) < 126) {
            return 0;
        }
        *start = pos + 4;
    }
    else {
        if (n - pos < 10) {
            return 0;
        }
        *len = 0;
        for (int i = 0; i < 8; i++) {
            *len = (*len << 8) | buf[pos + 2 + i];
        }
        if (*len < 65536 || (*len >> 63)) {
            return 0;
        }
        *start = pos + 10;
    }
    return 1;
}

/* scan()'s loop, from pos (in range): where it stopped, or -1 with an exception. */
static Py_ssize_t
scan_run(PyObject *bufobj, Py_ssize_t pos, PyObject *out, uint64_t limit)
{
    const unsigned char *buf = (const unsigned char *)PyBytes_AS_STRING(bufobj);
    Py_ssize_t n = PyBytes_GET_SIZE(bufobj);
    uint64_t len;
    Py_ssize_t start;
    while (simple_header(buf, n, pos, &len, &start)) {
        unsigned char b0 = buf[pos];
        if (len > limit || len > (uint64_t)(n - start)) {
            break;
        }
        PyObject *value, *item;
        if (b0 == 0x82) {
            value = PyBytes_FromStringAndSize((const char *)buf + start, (Py_ssize_t)len);
            if (value == NULL) {
                return -1;
            }
            item = new_frame(binary_type, binary_slot, value);
        } else {
            value = PyUnicode_DecodeUTF8((const char *)buf + start, (Py_ssize_t)len, NULL);
            if (value == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    return -1;
                }
                PyErr_Clear();
                break; /* the Python decoder reports it */
            }
            item = new_frame(text_type, text_slot, value);
        }
        Py_DECREF(value);
        if (item == NULL) {
            return -1;
        }
        int failed = PyList_Append(out, item);
        Py_DECREF(item);
        if (failed) {
            return -1;
        }
        pos = start + (Py_ssize_t)len;
    }
    return pos;
}


/* ---- encode() and decode() entry points -----------------------------------------
 *
 * mint.websocket.encode and decode themselves, when this module is built: the common
 * case of each (a Text or Binary frame to encode with no extension; whole text and
 * binary frames to decode, with no state and no extension with RSV bits) in C, with
 * no Python frame between the caller and the work. Anything else is handed, as it
 * came, to the Python functions (set by entry_setup()), which stay the reference; a
 * decode that the scan leaves unfinished goes on in Python's frame loop from where the
 * scan stopped. The state is read and written through the same slots as Python does.
 */
enum { WS_CFG, WS_RX, WS_TX, KEYS_AT, KEYS_PLAIN, KEYS_POOL, CFG_LIMITS, CFG_RSV,
       N_ENTRY_SLOTS };
static const char *entry_slot_names[N_ENTRY_SLOTS] = {
    "_cfg", "_rx", "_tx", "at", "plain", "pool", "scan_limits", "rsv_allowed",
};
/* 0 WebSocket, 1 _Keys, 2 _Config */
static const int entry_slot_owner[N_ENTRY_SLOTS] = {0, 0, 0, 1, 1, 1, 2, 2};
static PyTypeObject *ws_type, *keys_type;
static PyObject *entry_slots[N_ENTRY_SLOTS];
static PyObject *py_encode, *py_decode, *py_decode_loop;

/* The decoder's state records, NamedTuples (tuple subclasses): _Rx and _Message, their
 * fields in this order (mint.websocket._frame checks the names before entry_setup). */
enum { RX_ERROR, RX_HEAD, RX_LEFT, RX_FIN, RX_MSG, RX_N };
enum { M_OPCODE, M_RSV, M_SIZE, M_PARTS, M_TAIL, M_STREAM, M_INFLATING, M_INFLATED, M_N };
static PyTypeObject *rx_type, *msg_type;
static Py_ssize_t view_min; /* _frame._VIEW_MIN: a part this large is a view (see _part) */

static PyObject *
slot_get(int slot, PyObject *obj)
{
    return slot_value(entry_slots[slot], obj);
}

static PyObject *entry_setup(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
static PyObject *go_on(PyObject *ws, PyObject *rx, PyObject *data);
static PyObject *opened(PyObject *ws, PyObject *cfg, PyObject *data, Py_ssize_t pos,
                        uint64_t limit, PyObject *out);
static PyObject *encode(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames);
static PyObject *decode(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames);

static PyMethodDef methods[] = {
    {"mask", mask, METH_VARARGS, "XOR data with a repeating 4-byte key (RFC 6455 5.3)."},
    {"frame", (PyCFunction)(void (*)(void))frame, METH_FASTCALL,
     "frame(b0, payload, pool, at): a masked client frame, key pool[at:at + 4]."},
    {"setup", (PyCFunction)(void (*)(void))setup, METH_FASTCALL,
     "setup(Binary, Binary.data, Text, Text.data): the frame types scan() builds."},
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "scan(buf, pos, out, max_frame, max_message) -> pos: decode the simple frames."},
    {"constructor", (PyCFunction)(void (*)(void))constructor, METH_FASTCALL,
     "constructor(cls, slots, defaults): calling cls stores its positional arguments "
     "straight into its slots (the frame classes)."},
    {"entry_setup", (PyCFunction)(void (*)(void))entry_setup, METH_FASTCALL,
     "entry_setup(WebSocket, _Keys, _Config, encode, decode, decode_loop, _Rx, _Message, "
     "view_min) -> (encode, decode): the types encode() and decode() read and build, and "
     "the Python functions they hand the rest to; returns the two functions with the "
     "Python ones' documentation."},
    {"encode", (PyCFunction)(void (*)(void))encode, METH_FASTCALL | METH_KEYWORDS,
     "encode(websocket, frame)\n--\n\nmint.websocket.encode, its common case in C "
     "(see mint.websocket._frame)."},
    {"decode", (PyCFunction)(void (*)(void))decode, METH_FASTCALL | METH_KEYWORDS,
     "decode(websocket, data)\n--\n\nmint.websocket.decode, its common case in C "
     "(see mint.websocket._frame)."},
    {NULL, NULL, 0, NULL},
};

/* entry_setup(WebSocket, _Keys, _Config, encode, decode, decode_loop, _Rx, _Message,
 *             view_min) -> (encode, decode), documented */
static PyObject *
entry_setup(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9 || !PyType_Check(args[0]) || !PyType_Check(args[1]) || !PyType_Check(args[2])
        || !PyCallable_Check(args[3]) || !PyCallable_Check(args[4])
        || !PyCallable_Check(args[5]) || !PyType_Check(args[6]) || !PyType_Check(args[7])
        || !PyType_IsSubtype((PyTypeObject *)args[6], &PyTuple_Type)
        || !PyType_IsSubtype((PyTypeObject *)args[7], &PyTuple_Type)
        || !PyLong_CheckExact(args[8])) {
        PyErr_SetString(PyExc_TypeError,
                        "entry_setup(WebSocket, _Keys, _Config, encode, decode, decode_loop, "
                        "_Rx, _Message, view_min)");
        return NULL;
    }
    Py_ssize_t vmin = PyLong_AsSsize_t(args[8]);
    if (vmin < 1) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "entry_setup: view_min must be positive");
        }
        return NULL;
    }
    if (binary_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "entry_setup: setup() was not called");
        return NULL;
    }
    PyObject *slots[N_ENTRY_SLOTS] = {NULL};
    if (lookup_slots("entry_setup", args, entry_slot_names, entry_slot_owner, N_ENTRY_SLOTS,
                     slots) < 0) {
        return NULL;
    }
    for (int i = 0; i < N_ENTRY_SLOTS; i++) {
        Py_XSETREF(entry_slots[i], slots[i]);
    }
    Py_INCREF(args[0]);
    Py_XSETREF(ws_type, (PyTypeObject *)args[0]);
    Py_INCREF(args[1]);
    Py_XSETREF(keys_type, (PyTypeObject *)args[1]);
    Py_INCREF(args[3]);
    Py_XSETREF(py_encode, args[3]);
    Py_INCREF(args[4]);
    Py_XSETREF(py_decode, args[4]);
    Py_INCREF(args[5]);
    Py_XSETREF(py_decode_loop, args[5]);
    Py_INCREF(args[6]);
    Py_XSETREF(rx_type, (PyTypeObject *)args[6]);
    Py_INCREF(args[7]);
    Py_XSETREF(msg_type, (PyTypeObject *)args[7]);
    view_min = vmin;
    /* The public functions: copies of encode and decode with the Python functions'
     * documentation. */
    PyObject *encode_doc = documented(method_named(methods, "encode"), py_encode, "mint.websocket");
    PyObject *decode_doc = documented(method_named(methods, "decode"), py_decode, "mint.websocket");
    PyObject *result = NULL;
    if (encode_doc != NULL && decode_doc != NULL) {
        result = PyTuple_Pack(2, encode_doc, decode_doc);
    }
    Py_XDECREF(encode_doc);
    Py_XDECREF(decode_doc);
    return result;
}

static PyObject *
encode(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *payload = NULL, *keys = NULL, *v = NULL, *pool = NULL, *result = NULL;
    if (py_encode == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "encode: entry_setup() was not called");
        return NULL;
    }
    if (kwnames != NULL || nargs != 2 || Py_TYPE(args[0]) != ws_type) {
        goto python;
    }
    PyObject *ws = args[0], *frame_ = args[1];
    unsigned char b0;
    if ((PyObject *)Py_TYPE(frame_) == binary_type) {
        b0 = 0x82;  /* FIN | binary */
        payload = slot_value(binary_slot, frame_);
        if (payload == NULL || !PyBytes_CheckExact(payload)) {
            goto python;
        }
    }
    else if ((PyObject *)Py_TYPE(frame_) == text_type) {
        b0 = 0x81;  /* FIN | text */
        PyObject *text = slot_value(text_slot, frame_);
        if (text == NULL || !PyUnicode_CheckExact(text)) {
            Py_XDECREF(text);
            goto python;
        }
        payload = PyUnicode_AsUTF8String(text);  /* lone surrogates: Python's error */
        Py_DECREF(text);
        if (payload == NULL) {
            goto python;
        }
    }
    else {
        goto python;
    }
    keys = slot_get(WS_TX, ws);
    if (keys == NULL || Py_TYPE(keys) != keys_type) {
        goto python;
    }
    v = slot_get(KEYS_PLAIN, keys);  /* no extension negotiated */
    if (v != Py_True) {
        goto python;
    }
    Py_CLEAR(v);
    v = slot_get(KEYS_AT, keys);
    Py_ssize_t at = v == NULL ? -1 : PyLong_AsSsize_t(v);
    Py_CLEAR(v);
    pool = slot_get(KEYS_POOL, keys);
    /* (_Keys.size is len(pool): the pool's own length is the bound.) */
    if (at < 0 || pool == NULL || !PyBytes_CheckExact(pool)
        || at > PyBytes_GET_SIZE(pool) - 4) {
        goto python;  /* the pool is used up (or unset): Python refills it */
    }
    v = PyLong_FromSsize_t(at + 4);
    PyObject *at_slot = entry_slots[KEYS_AT];
    if (v == NULL || slot_store(at_slot, keys, v) < 0) {
        goto done;
    }
    PyObject *data = build_frame(b0, payload, pool, at);
    if (data != NULL) {
        result = PyTuple_Pack(2, ws, data);
        Py_DECREF(data);
    }
    goto done;
python:
    PyErr_Clear();
    result = PyObject_Vectorcall(py_encode, args, nargs, kwnames);
done:
    Py_XDECREF(payload);
    Py_XDECREF(keys);
    Py_XDECREF(v);
    Py_XDECREF(pool);
    return result;
}

/* ---- a message over several reads -----------------------------------------------
 *
 * A frame larger than a read (a large message, or any message over TLS, which comes a
 * record at a time) leaves the decoder waiting for the rest of its payload: the state
 * _Rx(None, b"", left, fin, _Message(...)), as the Python frame loop leaves it. The
 * functions below build and follow that state in C for the common case, a text or
 * binary message with no RSV bits and no extension that sees every message, so each
 * read of the payload costs no Python frame (the Python path builds four records and
 * calls five functions per read). Text is decoded as it comes, as _feed does: what is
 * complete, with the incomplete UTF-8 sequence at the end (at most 3 bytes) kept as
 * the message's tail for the next read. They build exactly what the Python functions
 * build (a property test compares the states read by read), and return NULL with no
 * exception for anything else, bad UTF-8 included, which the Python decoder then takes
 * as it came and reports. */

/* A record (tuple subclass tp) of n items, references stolen, NULLs allowed (then
 * NULL is returned, the others released). */
static PyObject *
record(PyTypeObject *tp, PyObject **items, Py_ssize_t n)
{
    PyObject *t = NULL;
    int complete = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        complete &= items[i] != NULL;
    }
    if (complete) {
        t = tp->tp_alloc(tp, n);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (t != NULL) {
            PyTuple_SET_ITEM(t, i, items[i]);
        }
        else {
            Py_XDECREF(items[i]);
        }
    }
    return t;
}

/* _Message(opcode, 0, size, parts, tail, opcode == OP_TEXT) (parts and tail: new
 * references or NULL; text is streamed, binary is not). */
static PyObject *
message(long opcode, Py_ssize_t size, PyObject *parts, PyObject *tail)
{
    PyObject *items[M_N] = {
        PyLong_FromLong(opcode), PyLong_FromLong(0), PyLong_FromSsize_t(size), parts, tail,
        Py_NewRef(opcode == 1 ? Py_True : Py_False), Py_NewRef(Py_None), PyLong_FromLong(0),
    };
    return record(msg_type, items, M_N);
}

/* A part shorter than this is merged with a short part before it (_frame._with). */
#define SMALL_PART 512

static Py_ssize_t
part_length(PyObject *part)
{
    if (PyBytes_CheckExact(part)) {
        return PyBytes_GET_SIZE(part);
    }
    if (PyUnicode_CheckExact(part)) {
        return PyUnicode_GET_LENGTH(part);
    }
    return SMALL_PART; /* a view: never merged */
}

/* The parts with one more: (parts, part) (parts: a new reference or NULL, consumed;
 * part borrowed), two short neighbours merged into one, as _frame._with: a part costs
 * a tuple and an object, and a frame trickled a byte per read held some 56 times its
 * size. An empty str part is not added, as _feed adds none. */
static PyObject *
parts_with(PyObject *parts, PyObject *part)
{
    if (parts == NULL || (PyUnicode_CheckExact(part) && PyUnicode_GET_LENGTH(part) == 0)) {
        return parts;
    }
    if (PyTuple_CheckExact(parts) && PyTuple_GET_SIZE(parts) == 2
        && part_length(part) < SMALL_PART) {
        PyObject *last = PyTuple_GET_ITEM(parts, 1);
        if (Py_TYPE(last) == Py_TYPE(part) && part_length(last) < SMALL_PART) {
            PyObject *merged;
            if (PyUnicode_CheckExact(part)) {
                merged = PyUnicode_Concat(last, part);
            }
            else {
                Py_ssize_t a = PyBytes_GET_SIZE(last), b = PyBytes_GET_SIZE(part);
                merged = PyBytes_FromStringAndSize(NULL, a + b);
                if (merged != NULL) {
                    memcpy(PyBytes_AS_STRING(merged), PyBytes_AS_STRING(last), (size_t)a);
                    memcpy(PyBytes_AS_STRING(merged) + a, PyBytes_AS_STRING(part), (size_t)b);
                }
            }
            if (merged == NULL) {
                Py_DECREF(parts);
                return NULL;
            }
            PyObject *cell = PyTuple_Pack(2, PyTuple_GET_ITEM(parts, 0), merged);
            Py_DECREF(merged);
            Py_DECREF(parts);
            return cell;
        }
    }
    PyObject *cell = PyTuple_Pack(2, parts, part);
    Py_DECREF(parts);
    return cell;
}

/* _Rx(None, b"", left, fin, msg) (msg stolen). */
static PyObject *
waiting(Py_ssize_t left, int fin, PyObject *msg)
{
    PyObject *items[RX_N] = {
        Py_NewRef(Py_None), PyBytes_FromStringAndSize(NULL, 0), PyLong_FromSsize_t(left),
        Py_NewRef(fin ? Py_True : Py_False), msg,
    };
    return record(rx_type, items, RX_N);
}

/* WebSocket(cfg, rx, tx), as _make (rx stolen, may be Py_None). */
static PyObject *
websocket_of(PyObject *cfg, PyObject *rx, PyObject *tx)
{
    PyObject *ws = rx == NULL ? NULL : ws_type->tp_alloc(ws_type, 0);
    if (ws != NULL
        && (slot_store(entry_slots[WS_CFG], ws, cfg) < 0
            || slot_store(entry_slots[WS_RX], ws, rx) < 0
            || slot_store(entry_slots[WS_TX], ws, tx) < 0)) {
        Py_CLEAR(ws);
    }
    Py_XDECREF(rx);
    return ws;
}

/* _part(data, start, end): the bytes, or a view of them when copying would be the
 * waste (a part of at least view_min bytes that is most of data). */
static PyObject *
part_of(PyObject *data, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t size = end - start, n = PyBytes_GET_SIZE(data);
    if (start == 0 && end == n) {
        return Py_NewRef(data); /* (data[0:n] is data itself) */
    }
    if (size >= view_min && size * 2 >= n) {
        PyObject *view = PyMemoryView_FromObject(data);
        PyObject *lo = PyLong_FromSsize_t(start), *hi = PyLong_FromSsize_t(end);
        PyObject *sl = lo && hi ? PySlice_New(lo, hi, NULL) : NULL;
        PyObject *part = view && sl ? PyObject_GetItem(view, sl) : NULL;
        Py_XDECREF(view);
        Py_XDECREF(lo);
        Py_XDECREF(hi);
        Py_XDECREF(sl);
        return part;
    }
    return PyBytes_FromStringAndSize(PyBytes_AS_STRING(data) + start, size);
}

/* The bytes of a part (bytes, or a view of bytes as part_of makes): 0, or -1. */
static int
part_bytes(PyObject *part, const char **p, Py_ssize_t *n)
{
    if (PyBytes_CheckExact(part)) {
        *p = PyBytes_AS_STRING(part);
        *n = PyBytes_GET_SIZE(part);
        return 0;
    }
    if (PyMemoryView_Check(part)) {
        Py_buffer *b = PyMemoryView_GET_BUFFER(part);
        if (b->buf != NULL && PyBuffer_IsContiguous(b, 'C') && b->itemsize == 1) {
            *p = (const char *)b->buf;
            *n = b->len;
            return 0;
        }
    }
    return -1;
}

/* A binary message's payload: its parts joined, then last (size: the parts' total,
 * which the message counted). NULL with no exception when a part is not what part_of
 * makes. */
static PyObject *
joined(PyObject *parts, Py_ssize_t size, const char *last, Py_ssize_t last_n)
{
    Py_ssize_t total = 0;
    for (PyObject *c = parts; c != Py_None; c = PyTuple_GET_ITEM(c, 0)) {
        const char *p;
        Py_ssize_t n;
        if (!PyTuple_CheckExact(c) || PyTuple_GET_SIZE(c) != 2
            || part_bytes(PyTuple_GET_ITEM(c, 1), &p, &n) < 0) {
            return NULL;
        }
        total += n;
    }
    if (total != size) {
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, size + last_n);
    if (out == NULL) {
        return NULL;
    }
    char *dst = PyBytes_AS_STRING(out);
    memcpy(dst + size, last, (size_t)last_n);
    Py_ssize_t at = size;
    for (PyObject *c = parts; c != Py_None; c = PyTuple_GET_ITEM(c, 0)) {
        const char *p = NULL;
        Py_ssize_t n = 0;
        (void)part_bytes(PyTuple_GET_ITEM(c, 1), &p, &n);
        at -= n;
        memcpy(dst + at, p, (size_t)n);
    }
    return out;
}

/* A text message's str: its parts (str) joined, then last. NULL with no exception when
 * a part is not a str. */
static PyObject *
joined_text(PyObject *parts, PyObject *last)
{
    Py_ssize_t count = PyUnicode_GET_LENGTH(last) > 0;
    for (PyObject *c = parts; c != Py_None; c = PyTuple_GET_ITEM(c, 0)) {
        if (!PyTuple_CheckExact(c) || PyTuple_GET_SIZE(c) != 2
            || !PyUnicode_CheckExact(PyTuple_GET_ITEM(c, 1))) {
            return NULL;
        }
        count++;
    }
    if (count == 1 && PyUnicode_GET_LENGTH(last) > 0) {
        return Py_NewRef(last);
    }
    PyObject *list = PyList_New(count);
    if (list == NULL) {
        return NULL;
    }
    Py_ssize_t at = count;
    if (PyUnicode_GET_LENGTH(last) > 0) {
        PyList_SET_ITEM(list, --at, Py_NewRef(last));
    }
    for (PyObject *c = parts; c != Py_None; c = PyTuple_GET_ITEM(c, 0)) {
        PyList_SET_ITEM(list, --at, Py_NewRef(PyTuple_GET_ITEM(c, 1)));
    }
    PyObject *empty = PyUnicode_New(0, 0);
    PyObject *text = empty == NULL ? NULL : PyUnicode_Join(empty, list);
    Py_XDECREF(empty);
    Py_DECREF(list);
    return text;
}

/* decode_part(tail, p[:n]): the str of what is complete and, in *rest, the incomplete
 * sequence at the end (a new bytes). NULL with no exception for bytes that can no
 * longer be valid UTF-8 (the Python decoder reports them), with one for a failure. */
static PyObject *
decoded(PyObject *tail, const char *p, Py_ssize_t n, PyObject **rest)
{
    PyObject *tmp = NULL;
    Py_ssize_t t = PyBytes_GET_SIZE(tail);
    if (t > 0) {
        tmp = PyBytes_FromStringAndSize(NULL, t + n);
        if (tmp == NULL) {
            return NULL;
        }
        memcpy(PyBytes_AS_STRING(tmp), PyBytes_AS_STRING(tail), (size_t)t);
        memcpy(PyBytes_AS_STRING(tmp) + t, p, (size_t)n);
        p = PyBytes_AS_STRING(tmp);
        n += t;
    }
    Py_ssize_t used = 0;
    PyObject *text = PyUnicode_DecodeUTF8Stateful(p, n, "strict", &used);
    const unsigned char *r = (const unsigned char *)p + used;
    if (text != NULL && n - used >= 2 && r[0] == 0xED && r[1] >= 0xA0) {
        Py_CLEAR(text); /* a surrogate's lead: is_valid_tail's case, Python's to report */
    }
    else if (text != NULL && (*rest = PyBytes_FromStringAndSize((const char *)r, n - used)) == NULL) {
        Py_CLEAR(text);
    }
    else if (text == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
    }
    Py_XDECREF(tmp);
    return text;
}

/* After a scan that stopped at data[pos:]: when that is the start of a FIN text or
 * binary frame, unmasked, no RSV bits, within the limit, whose payload has not all
 * come, (websocket waiting for the rest, out); else NULL with no exception. */
static PyObject *
opened(PyObject *ws, PyObject *cfg, PyObject *data, Py_ssize_t pos, uint64_t limit,
       PyObject *out)
{
    if (msg_type == NULL) {
        return NULL;
    }
    const unsigned char *buf = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    uint64_t len;
    Py_ssize_t start;
    if (!simple_header(buf, n, pos, &len, &start)) {
        return NULL;
    }
    long opcode = buf[pos] & 0x0F;
    if (len > limit || len <= (uint64_t)(n - start)) {
        return NULL; /* over the limit (the loop's error), or whole (not this case) */
    }
    Py_ssize_t size = n - start;
    PyObject *parts = Py_NewRef(Py_None), *tail = NULL, *part = NULL;
    if (opcode == 1) {
        PyObject *empty = PyBytes_FromStringAndSize(NULL, 0);
        part = empty == NULL ? NULL : decoded(empty, (const char *)buf + start, size, &tail);
        Py_XDECREF(empty);
    }
    else {
        tail = PyBytes_FromStringAndSize(NULL, 0);
        part = size == 0 ? Py_NewRef(Py_None) : part_of(data, start, n);
    }
    if (part == NULL || tail == NULL) {
        Py_DECREF(parts);
        Py_XDECREF(part);
        Py_XDECREF(tail);
        return NULL; /* (with no exception: bad UTF-8, the loop's to report) */
    }
    if (part != Py_None) {
        parts = parts_with(parts, part);
    }
    Py_DECREF(part);
    PyObject *tx = slot_get(WS_TX, ws);
    if (tx == NULL) {
        Py_XDECREF(parts);
        Py_DECREF(tail);
        return NULL;
    }
    PyObject *msg = message(opcode, size, parts, tail);
    PyObject *next = websocket_of(cfg, waiting((Py_ssize_t)(len - (uint64_t)size), 1, msg), tx);
    Py_DECREF(tx);
    if (next == NULL) {
        return NULL;
    }
    PyObject *result = PyTuple_Pack(2, next, out);
    Py_DECREF(next);
    return result;
}

/* decode(ws, data) where ws's state (rx) waits for the rest of a text or binary
 * frame's payload (see opened; a fragmented message's frames too): the payload's next
 * bytes, the message when they end it, and what follows through Python's frame loop.
 * NULL with no exception for any other state. */
static PyObject *
go_on(PyObject *ws, PyObject *rx, PyObject *data)
{
    if (msg_type == NULL || Py_TYPE(rx) != rx_type || PyTuple_GET_SIZE(rx) != RX_N) {
        return NULL;
    }
    PyObject *head = PyTuple_GET_ITEM(rx, RX_HEAD), *msg = PyTuple_GET_ITEM(rx, RX_MSG);
    PyObject *fin = PyTuple_GET_ITEM(rx, RX_FIN), *left_obj = PyTuple_GET_ITEM(rx, RX_LEFT);
    if (PyTuple_GET_ITEM(rx, RX_ERROR) != Py_None || !PyBytes_CheckExact(head)
        || PyBytes_GET_SIZE(head) != 0 || (fin != Py_True && fin != Py_False)
        || !PyLong_CheckExact(left_obj) || Py_TYPE(msg) != msg_type
        || PyTuple_GET_SIZE(msg) != M_N) {
        return NULL;
    }
    PyObject *opcode_obj = PyTuple_GET_ITEM(msg, M_OPCODE), *rsv = PyTuple_GET_ITEM(msg, M_RSV);
    PyObject *size_obj = PyTuple_GET_ITEM(msg, M_SIZE), *tail = PyTuple_GET_ITEM(msg, M_TAIL);
    long opcode = PyLong_CheckExact(opcode_obj) ? PyLong_AsLong(opcode_obj) : -1;
    PyErr_Clear(); /* (an opcode too large for a long: not this case) */
    /* binary, or text validated as it comes (stream): no extension in either */
    PyObject *stream = opcode == 1 ? Py_True : Py_False;
    if ((opcode != 1 && opcode != 2) || PyTuple_GET_ITEM(msg, M_STREAM) != stream
        || !PyLong_CheckExact(rsv) || _PyLong_Sign(rsv) != 0
        || PyTuple_GET_ITEM(msg, M_INFLATING) != Py_None || !PyLong_CheckExact(size_obj)
        || !PyBytes_CheckExact(tail)) {
        return NULL;
    }
    Py_ssize_t left = PyLong_AsSsize_t(left_obj), size = PyLong_AsSsize_t(size_obj);
    if (left <= 0 || size < 0) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *cfg = slot_get(WS_CFG, ws), *tx = slot_get(WS_TX, ws), *limits = NULL;
    PyObject *result = NULL, *part = NULL, *rest = NULL, *out = NULL, *next_msg = NULL;
    if (cfg == NULL || tx == NULL) {
        goto done;
    }
    /* None: an extension sees every message, and the message's end is Python's */
    limits = slot_get(CFG_LIMITS, cfg);
    if (limits == NULL || limits == Py_None) {
        goto done;
    }
    PyObject *parts = PyTuple_GET_ITEM(msg, M_PARTS);
    Py_ssize_t k = PyBytes_GET_SIZE(data), m = k < left ? k : left; /* this frame's bytes */
    int ends = m == left, whole = ends && fin == Py_True;
    if (opcode == 1) {
        part = decoded(tail, PyBytes_AS_STRING(data), m, &rest);
        if (part == NULL || (whole && PyBytes_GET_SIZE(rest) > 0)) {
            goto done; /* bad UTF-8, or a message that ends inside a sequence: Python's */
        }
    }
    else if (!whole) {
        part = part_of(data, 0, m);
        rest = PyBytes_FromStringAndSize(NULL, 0);
        if (part == NULL || rest == NULL) {
            goto done;
        }
    }
    out = PyList_New(0);
    if (out == NULL) {
        goto done;
    }
    if (!whole) {
        next_msg = message(opcode, size + m, parts_with(Py_NewRef(parts), part), Py_NewRef(rest));
        if (next_msg == NULL) {
            goto done;
        }
    }
    else {
        PyObject *item;
        if (opcode == 1) {
            PyObject *text = joined_text(parts, part);
            item = text == NULL ? NULL : new_frame(text_type, text_slot, text);
            Py_XDECREF(text);
        }
        else {
            PyObject *payload = joined(parts, size, PyBytes_AS_STRING(data), m);
            item = payload == NULL ? NULL : new_frame(binary_type, binary_slot, payload);
            Py_XDECREF(payload);
        }
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            goto done; /* (with no exception: a part Python made, Python's case) */
        }
        Py_DECREF(item);
    }
    if (!ends) {
        /* All of it is payload, and more is to come. */
        PyObject *next = websocket_of(cfg, waiting(left - k, fin == Py_True, next_msg), tx);
        next_msg = NULL; /* (stolen) */
        if (next != NULL) {
            result = PyTuple_Pack(2, next, out);
            Py_DECREF(next);
        }
    }
    else if (m == k && next_msg == NULL) {
        PyObject *next = websocket_of(cfg, Py_NewRef(Py_None), tx);
        if (next != NULL) {
            result = PyTuple_Pack(2, next, out);
            Py_DECREF(next);
        }
    }
    else {
        /* More frames after it, or a fragmented message going on: the frame loop's. */
        PyObject *at = PyLong_FromSsize_t(m);
        if (at != NULL) {
            PyObject *loop_args[7] = {ws, rx, cfg, data, at, out,
                                      next_msg == NULL ? Py_None : next_msg};
            result = PyObject_Vectorcall(py_decode_loop, loop_args, 7, NULL);
            Py_DECREF(at);
        }
    }
done:
    Py_XDECREF(next_msg);
    Py_XDECREF(out);
    Py_XDECREF(part);
    Py_XDECREF(rest);
    Py_XDECREF(cfg);
    Py_XDECREF(tx);
    Py_XDECREF(limits);
    return result;
}

static PyObject *
decode(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *cfg = NULL, *v = NULL, *out = NULL, *result = NULL;
    if (py_decode == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "decode: entry_setup() was not called");
        return NULL;
    }
    if (kwnames != NULL || nargs != 2 || Py_TYPE(args[0]) != ws_type
        || !PyBytes_CheckExact(args[1]) || PyBytes_GET_SIZE(args[1]) == 0) {
        goto python;
    }
    PyObject *ws = args[0], *data = args[1];
    v = slot_get(WS_RX, ws);  /* nothing buffered, no message in progress, not failed */
    if (v != Py_None) {
        if (v != NULL) {
            /* A binary message's frame in progress: its next bytes (see go_on). */
            result = go_on(ws, v, data);
        }
        if (result == NULL && !PyErr_Occurred()) {
            goto python;
        }
        goto done;
    }
    Py_CLEAR(v);
    cfg = slot_get(WS_CFG, ws);
    if (cfg == NULL) {
        goto python;
    }
    v = slot_get(CFG_RSV, cfg);  /* an extension with RSV bits: Python's shortcuts */
    if (v == NULL || !PyLong_CheckExact(v) || _PyLong_Sign(v) != 0) {
        goto python;
    }
    Py_CLEAR(v);
    v = slot_get(CFG_LIMITS, cfg);  /* None: an extension sees every message */
    if (v == NULL || !PyTuple_CheckExact(v) || PyTuple_GET_SIZE(v) != 2) {
        goto python;
    }
    uint64_t limit;
    if (limit_of(PyTuple_GET_ITEM(v, 0), PyTuple_GET_ITEM(v, 1), &limit) < 0) {
        goto python;
    }
    Py_CLEAR(v);
    out = PyList_New(0);
    if (out == NULL) {
        goto done;
    }
    Py_ssize_t pos = scan_run(data, 0, out, limit);
    if (pos < 0) {
        goto done;
    }
    if (pos == PyBytes_GET_SIZE(data)) {
        result = PyTuple_Pack(2, ws, out);
        goto done;
    }
    /* The scan stopped at a binary frame whose payload is still to come: the state
     * that waits for it, as the frame loop would leave it (see opened). */
    result = opened(ws, cfg, data, pos, limit, out);
    if (result != NULL || PyErr_Occurred()) {
        goto done;
    }
    /* The scan stopped early: Python's frame loop goes on from there, with the frames
     * so far (as decode() itself does after its scan). */
    PyObject *at = PyLong_FromSsize_t(pos);
    if (at == NULL) {
        goto done;
    }
    PyObject *loop_args[7] = {ws, Py_None, cfg, data, at, out, Py_None};
    result = PyObject_Vectorcall(py_decode_loop, loop_args, 7, NULL);
    Py_DECREF(at);
    goto done;
python:
    PyErr_Clear();
    result = PyObject_Vectorcall(py_decode, args, nargs, kwnames);
done:
    Py_XDECREF(cfg);
    Py_XDECREF(v);
    Py_XDECREF(out);
    return result;
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "mint._speedups", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
