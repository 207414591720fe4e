# Pass-through shim: Debian's bazel-rules-cc 0.0.4 does not load under Bazel 4.2.3
# (it needs use_cpp_toolchain), so the native rules are re-exported here.
def cc_binary(**kw):
    native.cc_binary(**kw)

def cc_library(**kw):
    native.cc_library(**kw)

def cc_test(**kw):
    native.cc_test(**kw)

def cc_import(**kw):
    native.cc_import(**kw)

def cc_toolchain(**kw):
    native.cc_toolchain(**kw)

def cc_toolchain_suite(**kw):
    native.cc_toolchain_suite(**kw)
