# Fixtures of test_symbolizer (tests/data/symbolizer): the same program as a PIE and as a
# non-PIE executable, a shared library it links, one it dlopens, and stripped copies
# (symbols then come from .dynsym only). All land next to the test binary.
set(AP_SYMFIX_SRC ${CMAKE_SOURCE_DIR}/tests/data/symbolizer)

add_library(apfix SHARED ${AP_SYMFIX_SRC}/fixture_lib.c)
add_library(apfix_dl SHARED ${AP_SYMFIX_SRC}/fixture_dl.c)
set_target_properties(apfix apfix_dl PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${AP_TEST_BIN_DIR})
ap_no_sanitize(apfix apfix_dl)

add_executable(symfix_pie ${AP_SYMFIX_SRC}/fixture_main.c)
target_compile_options(symfix_pie PRIVATE -fPIE)
target_link_options(symfix_pie PRIVATE -pie)
add_executable(symfix_nopie ${AP_SYMFIX_SRC}/fixture_main.c)
target_compile_options(symfix_nopie PRIVATE -fno-pie)
target_link_options(symfix_nopie PRIVATE -no-pie)
ap_no_sanitize(symfix_pie symfix_nopie)
foreach(fix symfix_pie symfix_nopie)
  # ENABLE_EXPORTS (-rdynamic) puts the functions in .dynsym, for the stripped copy
  target_link_libraries(${fix} PRIVATE apfix ${CMAKE_DL_LIBS})
  set_target_properties(${fix} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${AP_TEST_BIN_DIR}
                        ENABLE_EXPORTS ON)
endforeach()

if(NOT CMAKE_STRIP)
  find_program(CMAKE_STRIP strip REQUIRED)
endif()
add_custom_command(
  OUTPUT ${AP_TEST_BIN_DIR}/symfix_pie.stripped ${AP_TEST_BIN_DIR}/libapfix.stripped.so
  COMMAND ${CMAKE_STRIP} -o ${AP_TEST_BIN_DIR}/symfix_pie.stripped $<TARGET_FILE:symfix_pie>
  COMMAND ${CMAKE_STRIP} -o ${AP_TEST_BIN_DIR}/libapfix.stripped.so $<TARGET_FILE:apfix>
  DEPENDS symfix_pie apfix
  COMMENT "strip symbolizer fixtures")
add_custom_target(symfix_stripped DEPENDS ${AP_TEST_BIN_DIR}/symfix_pie.stripped
                                          ${AP_TEST_BIN_DIR}/libapfix.stripped.so)

add_dependencies(test_symbolizer apfix apfix_dl symfix_pie symfix_nopie symfix_stripped)
