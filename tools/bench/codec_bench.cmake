# codec_bench: bytes, error and speed of every tensor codec mode on gradient-like and weight-like data.
if(TARGET noloco_trainer_core)
  add_executable(codec_bench ${CMAKE_CURRENT_LIST_DIR}/codec_bench.cc)
  target_link_libraries(codec_bench PRIVATE noloco_trainer_core)
endif()
