# Shared compile options for kiln's own code: warnings are errors.
KILN_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wno-unused-parameter",
    # Options structs are meant to be filled with designated initializers.
    "-Wno-missing-field-initializers",
]
