/* Reading and writing the __slots__ of mint's Python objects from C.
 *
 * mint's C entry points (mint._speedups, mint._iospeedups, mint._aiospeedups) keep no
 * state of their own: they read the state of the Python objects they are given (a
 * WebSocket's decoder state, a connection's transport) through the same slot
 * descriptors Python uses, found once, when the module is set up (the I/O modules'
 * setup() is setup_state, below). Shared by the three modules (static functions: each
 * gets its own copy).
 */
#ifndef MINT_SLOTS_H
#define MINT_SLOTS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h> /* T_OBJECT_EX, READONLY (Py_T_OBJECT_EX, Py_READONLY in 3.12) */
#include <string.h>

/* The descriptors of n slots (new references into out): slot i is names[i] of the
 * type types[owners[i]], looked up as attribute access finds it (base classes too).
 * -1 with TypeError, and nothing kept, when one is not a settable descriptor. */
static int
lookup_slots(const char *who, PyObject *const *types, const char *const *names,
             const int *owners, int n, PyObject **out)
{
    for (int i = 0; i < n; i++) {
        PyTypeObject *owner = (PyTypeObject *)types[owners[i]];
        PyObject *name = PyUnicode_InternFromString(names[i]);
        PyObject *d = name == NULL ? NULL : _PyType_Lookup(owner, name);
        Py_XDECREF(name);
        if (d == NULL || Py_TYPE(d)->tp_descr_get == NULL || Py_TYPE(d)->tp_descr_set == NULL) {
            for (int j = 0; j < i; j++) {
                Py_CLEAR(out[j]);
            }
            PyErr_Format(PyExc_TypeError, "%s: %s.%s is not a slot", who, owner->tp_name,
                         names[i]);
            return -1;
        }
        Py_INCREF(d);
        out[i] = d;
    }
    return 0;
}

/* Where obj keeps the slot described by d, when d is a __slots__ member of obj's type
 * or of a base of it (what the member descriptor would check, and find, on every
 * access: a subtype keeps its bases' slots at their offsets), else NULL: the caller
 * then goes through the descriptor, which handles every other case. A round trip reads
 * some thirty slots; through the descriptor each costs a call, a subtype check and a
 * switch on the member's kind, here a comparison or two and a load. The transports'
 * slots are their base class's (BaseTransport), hence the base check before the
 * general one. */
static PyObject **
slot_address(PyObject *d, PyObject *obj)
{
    if (!Py_IS_TYPE(d, &PyMemberDescr_Type)) {
        return NULL;
    }
    PyTypeObject *owner = PyDescr_TYPE(d), *tp = Py_TYPE(obj);
    if (tp != owner && tp->tp_base != owner && !PyType_IsSubtype(tp, owner)) {
        return NULL;
    }
    PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
    if (m->type != T_OBJECT_EX || (m->flags & READONLY)) {
        return NULL;
    }
    return (PyObject **)((char *)obj + m->offset);
}

/* obj's value of the slot described by d (a new reference), or NULL with no exception
 * set when the slot is unset: the callers take that as "not the case I handle". */
static PyObject *
slot_value(PyObject *d, PyObject *obj)
{
    PyObject **at = slot_address(d, obj);
    if (at != NULL) {
        Py_XINCREF(*at);
        return *at;
    }
    PyObject *v = Py_TYPE(d)->tp_descr_get(d, obj, (PyObject *)Py_TYPE(obj));
    if (v == NULL) {
        PyErr_Clear();
    }
    return v;
}

/* Set obj's slot described by d to value (not NULL), as setattr would: 0, or -1 with
 * an exception. */
static int
slot_store(PyObject *d, PyObject *obj, PyObject *value)
{
    PyObject **at = slot_address(d, obj);
    if (at != NULL) {
        PyObject *old = *at;
        Py_INCREF(value);
        *at = value;
        Py_XDECREF(old);
        return 0;
    }
    return Py_TYPE(d)->tp_descr_set(d, obj, value);
}

/* Whether obj's slot (described by d) holds exactly want: one of the singletons True,
 * False or None, compared by identity as the Python code's checks do. An unset slot
 * holds none of them. */
static inline int
slot_is(PyObject *d, PyObject *obj, PyObject *want)
{
    PyObject **at = slot_address(d, obj);
    if (at != NULL) {
        return *at == want;
    }
    PyObject *v = slot_value(d, obj);
    int same = v == want;
    Py_XDECREF(v);
    return same;
}

/* A count kept in obj's int slot d moved by delta, never below 0 (the SocketData a
 * mailbox made that no stream took: Mailbox.handed_out). 0, or -1 with an exception. */
static inline int
slot_count(PyObject *d, PyObject *obj, long delta)
{
    PyObject *v = slot_value(d, obj);
    if (v == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "a count's slot is unset");
        }
        return -1;
    }
    long n = PyLong_AsLong(v);
    Py_DECREF(v);
    if (n == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (n + delta < 0 || delta == 0) {
        return 0; /* (nothing counted to take off) */
    }
    PyObject *w = PyLong_FromLong(n + delta);
    if (w == NULL) {
        return -1;
    }
    int r = slot_store(d, obj, w);
    Py_DECREF(w);
    return r;
}

/* The entry of table (ended by a NULL name) called name, or NULL. */
static inline const PyMethodDef *
method_named(const PyMethodDef *table, const char *name)
{
    for (; table->ml_name != NULL; table++) {
        if (strcmp(table->ml_name, name) == 0) {
            return table;
        }
    }
    return NULL;
}

/* A copy of the builtin described by tmpl whose docstring is pyfunc's (after tmpl's
 * text signature, which inspect.signature reads): help() on a C entry point then
 * shows the documentation of the Python function it stands for. The copy's method
 * definition lives as long as the process (a module's entry points are set up once). */
static inline PyObject *
documented(const PyMethodDef *tmpl, PyObject *pyfunc, const char *module)
{
    if (tmpl == NULL) {
        PyErr_SetString(PyExc_SystemError, "documented: no such method");
        return NULL;
    }
    PyObject *doc = PyObject_GetAttrString(pyfunc, "__doc__");
    if (doc == NULL) {
        return NULL;
    }
    const char *text = PyUnicode_Check(doc) ? PyUnicode_AsUTF8(doc) : "";
    if (text == NULL) {
        Py_DECREF(doc);
        return NULL;
    }
    const char *sig_end = tmpl->ml_doc == NULL ? NULL : strstr(tmpl->ml_doc, "\n--\n\n");
    size_t sig_len = sig_end == NULL ? 0 : (size_t)(sig_end - tmpl->ml_doc) + 5;
    size_t text_len = strlen(text);
    char *buf = PyMem_RawMalloc(sig_len + text_len + 1);
    PyMethodDef *def = PyMem_RawMalloc(sizeof(PyMethodDef));
    PyObject *name = PyUnicode_FromString(module);
    if (buf == NULL || def == NULL || name == NULL) {
        PyMem_RawFree(buf);
        PyMem_RawFree(def);
        Py_XDECREF(name);
        Py_DECREF(doc);
        return PyErr_NoMemory();
    }
    memcpy(buf, tmpl->ml_doc, sig_len);
    memcpy(buf + sig_len, text, text_len + 1);
    Py_DECREF(doc);
    *def = *tmpl;
    def->ml_doc = buf;
    PyObject *func = PyCFunction_NewEx(def, NULL, name);
    Py_DECREF(name);
    return func;
}

/* Each out[i] not yet made: names[i], interned. 0, or -1 with an exception. */
static inline int
intern_once(PyObject **const out[], const char *const names[], int n)
{
    for (int i = 0; i < n; i++) {
        if (*out[i] == NULL && (*out[i] = PyUnicode_InternFromString(names[i])) == NULL) {
            return -1;
        }
    }
    return 0;
}

/* intern_once over two arrays of the caller's (not pointers): their length is the
 * count, and the build fails when they differ. */
#define INTERN_ONCE(strings, names)                                                      \
    intern_once((strings), (names),                                                      \
                (int)(sizeof(names) / sizeof((names)[0])                                 \
                      + 0 * sizeof(char[sizeof(strings) / sizeof((strings)[0])           \
                                             == sizeof(names) / sizeof((names)[0])       \
                                         ? 1 : -1])))

/* The read_burst argument of a setup (the most one C read returns), or -1 with an
 * exception when it is not a positive int. */
static inline Py_ssize_t
read_burst_of(const char *who, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (n <= 0) {
        PyErr_Format(PyExc_ValueError, "%s: read_burst must be positive", who);
        return -1;
    }
    return n;
}

/* What a C I/O module's setup() is given, checked and kept: n_types types, a positive
 * read_burst, then n_calls callables (a TypeError with `usage` for a wrong count). The
 * n_slots descriptors slot_names[i] of the types slot_owner[i] are looked up; then
 * *ready is cleared (releasing the old values may run Python code, which must not find
 * the state half replaced) and types, slots, calls and *read_burst take the new values.
 * 0, or -1 with an exception and nothing changed. Both modules' setups start here;
 * each keeps its own table of slots. */
static inline int
setup_state(const char *usage, PyObject *const *args, Py_ssize_t nargs, int n_types,
            int n_calls, const char *const *slot_names, const int *slot_owner, int n_slots,
            int *ready, PyTypeObject **types, PyObject **slots, PyObject **calls,
            Py_ssize_t *read_burst)
{
    if (nargs != n_types + 1 + n_calls) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    for (int i = 0; i < n_types; i++) {
        if (!PyType_Check(args[i])) {
            PyErr_Format(PyExc_TypeError, "setup: the first %d arguments are types", n_types);
            return -1;
        }
    }
    Py_ssize_t burst = read_burst_of("setup", args[n_types]);
    if (burst < 0) {
        return -1;
    }
    for (int i = 0; i < n_calls; i++) {
        if (!PyCallable_Check(args[n_types + 1 + i])) {
            PyErr_Format(PyExc_TypeError, "setup: the last %d arguments are callables",
                         n_calls);
            return -1;
        }
    }
    PyObject **found = PyMem_Calloc((size_t)n_slots, sizeof(PyObject *));
    if (found == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (lookup_slots("setup", args, slot_names, slot_owner, n_slots, found) < 0) {
        PyMem_Free(found);
        return -1;
    }
    *ready = 0;
    for (int i = 0; i < n_types; i++) {
        Py_INCREF(args[i]);
        Py_XSETREF(types[i], (PyTypeObject *)args[i]);
    }
    for (int i = 0; i < n_slots; i++) {
        Py_XSETREF(slots[i], found[i]);
    }
    PyMem_Free(found);
    for (int i = 0; i < n_calls; i++) {
        Py_INCREF(args[n_types + 1 + i]);
        Py_XSETREF(calls[i], args[n_types + 1 + i]);
    }
    *read_burst = burst;
    return 0;
}

/* The direct ref of a connection's session (a new reference; session is consumed) when
 * it is an upgraded HTTP/1.1 connection, whose bytes are its WebSocket's as they come;
 * else NULL, no exception set. */
static inline PyObject *
direct_ref_of(PyObject *session, PyObject *name)
{
    /* The HTTP/1.1 session keeps it in a slot: its descriptor, found on the first call,
     * is read directly (a load) where getattr would look the name up in the type and
     * the instance on every read and write of a round trip. Only a session of the
     * type that defines the slot takes it (a subclass may define the name anew);
     * any other goes through getattr. */
    static PyObject *descr;
    if (session == NULL) {
        return NULL;
    }
    PyObject *r;
    if (descr == NULL || PyDescr_TYPE(descr) != Py_TYPE(session)) {
        PyObject *d = _PyType_Lookup(Py_TYPE(session), name);
        if (d != NULL && Py_IS_TYPE(d, &PyMemberDescr_Type)
            && PyDescr_TYPE(d) == Py_TYPE(session)) {
            Py_INCREF(d);
            Py_XSETREF(descr, d);
        }
    }
    if (descr != NULL && PyDescr_TYPE(descr) == Py_TYPE(session)) {
        r = slot_value(descr, session);
    }
    else {
        r = PyObject_GetAttr(session, name);
    }
    Py_DECREF(session);
    if (r == NULL) {
        PyErr_Clear();
        return NULL;
    }
    if (r == Py_None) {
        Py_DECREF(r);
        return NULL;
    }
    return r;
}


#endif
