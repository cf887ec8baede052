# checkpoint_bench: store checkpoint write/load time against a plain file + fsync.
if(TARGET noloco_storage)
  add_executable(checkpoint_bench ${CMAKE_CURRENT_LIST_DIR}/checkpoint_bench.cc)
  target_link_libraries(checkpoint_bench PRIVATE noloco_storage noloco_common)
  # --preset NAME sizes the checkpoint from a model preset (model.cc is torch-free).
  if(TARGET noloco_trainer_core)
    target_compile_definitions(checkpoint_bench PRIVATE NOLOCO_BENCH_PRESETS)
    target_link_libraries(checkpoint_bench PRIVATE noloco_trainer_core)
  endif()
endif()
