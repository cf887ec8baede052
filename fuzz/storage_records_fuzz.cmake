# Fuzzes the stored-record decoders (manifest, peer, ban, metrics).
if(TARGET noloco_storage)
  add_executable(storage_records_fuzz ${CMAKE_CURRENT_LIST_DIR}/storage_records_fuzz.cc)
  target_link_libraries(storage_records_fuzz PRIVATE noloco_storage noloco_common)
  target_link_options(storage_records_fuzz PRIVATE -fsanitize=fuzzer)
endif()
