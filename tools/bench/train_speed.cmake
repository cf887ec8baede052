# noloco_bench_train_speed: tokens/s of the C++ trainer (run_train_speed.sh compares it with
# train_speed.py). Like trainer/core it uses torch directly; built only when trainer/core exists.
if(TARGET noloco_trainer_core)
  add_executable(noloco_bench_train_speed ${CMAKE_CURRENT_LIST_DIR}/train_speed.cc
                                          ${CMAKE_CURRENT_LIST_DIR}/matmul_throughput.cc
                                          $<TARGET_OBJECTS:noloco_process_defaults>)
  target_link_libraries(noloco_bench_train_speed PRIVATE noloco_trainer_core ${TORCH_LIBRARIES})
  target_include_directories(noloco_bench_train_speed SYSTEM PRIVATE ${TORCH_INCLUDE_DIRS})
endif()
