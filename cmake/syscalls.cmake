# Syscall and errno name tables of the target architecture, generated at build time from the
# target's kernel UAPI headers (through the target C compiler's preprocessor) into the build
# tree. Sets AP_SYSCALL_TABLE_C, the generated source to compile into aperture_core.
#
# An architecture without a table is a configure error: a table taken from another
# architecture would silently mislabel every syscall.

find_package(Python3 REQUIRED COMPONENTS Interpreter)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(AP_SYSCALL_ARCH x86_64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  set(AP_SYSCALL_ARCH arm64)
else()
  message(FATAL_ERROR "syscall table: architecture '${CMAKE_SYSTEM_PROCESSOR}' is not supported "
                      "(x86_64, aarch64). Add it to cmake/syscalls.cmake and "
                      "cmake/gen_syscalls.py.")
endif()

set(AP_SYSCALL_TABLE_C ${CMAKE_BINARY_DIR}/gen/syscall_table.c)
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/gen)
# the compiler as the build invokes it, cross-compilation target and sysroot included
set(AP_SYSCALL_CC ${CMAKE_C_COMPILER} ${CMAKE_C_COMPILER_ARG1})
if(CMAKE_C_COMPILER_TARGET)
  list(APPEND AP_SYSCALL_CC --target=${CMAKE_C_COMPILER_TARGET})
endif()
if(CMAKE_SYSROOT)
  list(APPEND AP_SYSCALL_CC --sysroot=${CMAKE_SYSROOT})
endif()
string(JOIN " " AP_SYSCALL_CC ${AP_SYSCALL_CC})
add_custom_command(
  OUTPUT ${AP_SYSCALL_TABLE_C}
  COMMAND Python3::Interpreter ${CMAKE_SOURCE_DIR}/cmake/gen_syscalls.py
          --cc "${AP_SYSCALL_CC}" --arch ${AP_SYSCALL_ARCH} --out ${AP_SYSCALL_TABLE_C}
  DEPENDS ${CMAKE_SOURCE_DIR}/cmake/gen_syscalls.py ${CMAKE_SOURCE_DIR}/cmake/syscalls.cmake
  COMMENT "Generating the ${AP_SYSCALL_ARCH} syscall table"
  VERBATIM)
