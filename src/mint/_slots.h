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

/* obj's value of the slot described by d (a new reference), or NULL with no exception
 * set when the slot is unset: the callers take that as "not the case I handle". */
static PyObject *
slot_value(PyObject *d, PyObject *obj)
{
    PyObject *v = Py_TYPE(d)->tp_descr_get(d, obj, (PyObject *)Py_TYPE(obj));
    if (v == NULL) {
        PyErr_Clear();
    }
    return v;
}

#endif
