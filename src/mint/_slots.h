/* Reading and writing the __slots__ of mint's Python objects from C.
 *
 * mint's C entry points (mint._speedups, mint._iospeedups) keep no state of their own:
 * they read the state of the Python objects they are given (a WebSocket's decoder
 * state, a connection's transport) through the same slot descriptors Python uses,
 * found once, when the module is set up. Shared by both modules (static functions:
 * each gets its own copy).
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

/* Where obj keeps the slot described by d, when d is a __slots__ member of exactly obj's
 * type (what the member descriptor would check, and find, on every access), else NULL:
 * the caller then goes through the descriptor, which handles every other case. A round
 * trip reads some thirty slots; through the descriptor each costs a type check and a
 * switch on the member's kind, here a comparison and a load. */
static PyObject **
slot_address(PyObject *d, PyObject *obj)
{
    if (!Py_IS_TYPE(d, &PyMemberDescr_Type)
        || PyDescr_TYPE(d) != Py_TYPE(obj)) {
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
static int
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

#endif
