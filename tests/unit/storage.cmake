# The storage tests (test_selector, test_storage_*) need the storage library, which
# aperture_core does not hold (only the aggregator links it).
foreach(t test_selector test_storage_contract test_storage_durability)
  if(TARGET ${t})
    target_link_libraries(${t} PRIVATE ap_storage)
  endif()
endforeach()
