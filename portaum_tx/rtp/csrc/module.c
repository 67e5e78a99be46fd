#include "rtpcore.h"

static struct PyModuleDef rtpcore_module = {
    PyModuleDef_HEAD_INIT, "portaum_tx.rtp._rtpcore",
    "The media engine's C accelerator (see rtpcore.h).", -1, NULL,
};

PyMODINIT_FUNC
PyInit__rtpcore(void)
{
    PyObject *module = PyModule_Create(&rtpcore_module);
    if (module == NULL)
        return NULL;
    if (rtpcore_add_jitter(module) < 0 || rtpcore_add_stats(module) < 0 || rtpcore_add_io(module) < 0 ||
        rtpcore_add_pacer(module) < 0 || rtpcore_add_stream(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
