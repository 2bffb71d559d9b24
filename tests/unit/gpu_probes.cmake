# Fixtures of test_agent_gpu_probes (tests/data/gpu): a program shaped like a static cudart
# build (cudart-named LOCAL functions, a .nv_fatbin section), its stripped copy, and a shared
# library with device code that imports cudart. Built with the C compiler: no nvcc needed.
set(AP_GPUFIX_SRC ${CMAKE_SOURCE_DIR}/tests/data/gpu)
add_executable(gpufix_static ${AP_GPUFIX_SRC}/fake_cudart.c)
add_library(gpufix_uses SHARED ${AP_GPUFIX_SRC}/uses_cudart.c)
set_target_properties(gpufix_static PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${AP_TEST_BIN_DIR})
set_target_properties(gpufix_uses PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${AP_TEST_BIN_DIR})
ap_no_sanitize(gpufix_static gpufix_uses)
if(NOT CMAKE_STRIP)
  find_program(CMAKE_STRIP strip REQUIRED)
endif()
add_custom_command(
  OUTPUT ${AP_TEST_BIN_DIR}/gpufix_static.stripped
  COMMAND ${CMAKE_STRIP} -o ${AP_TEST_BIN_DIR}/gpufix_static.stripped
          $<TARGET_FILE:gpufix_static>
  DEPENDS gpufix_static
  COMMENT "strip the gpu fixture")
add_custom_target(gpufix_stripped DEPENDS ${AP_TEST_BIN_DIR}/gpufix_static.stripped)
add_dependencies(test_agent_gpu_probes gpufix_static gpufix_uses gpufix_stripped)
