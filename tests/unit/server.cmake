# test_server_*.c test the aggregator's pure parsers (times, flags, token files): they link
# ap_server too, of which a static link takes only the objects they use.
if(TARGET ap_server)
  file(GLOB AP_SERVER_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/test_server_*.c)
  foreach(src ${AP_SERVER_UNIT_TESTS})
    get_filename_component(name ${src} NAME_WE)
    target_link_libraries(${name} PRIVATE ap_server)
  endforeach()
endif()
