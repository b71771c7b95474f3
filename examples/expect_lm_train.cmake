# cmake -DMODEL=<HF folder> -DWORK=<scratch folder> -P expect_lm_train.cmake -- <slim program>
# `slim lm train` end to end on a JSONL written here (token ids below 96, the untied_gqa3 fixture's vocabulary):
#   1. LoRA on q,v for 3 steps → exit 0, {"steps": 3, ...} on stdout, a PEFT adapter in --out;
#   2. the same command again → resumes from the trainer state in --out at step 3: no new step, the same
#      final loss;
#   3. `lm logits --adapter <out>` differs from the base model's logits (the adapter's B left zero);
#   4. `lm generate --adapter <out>` prints 4 new ids;
#   5. --full for 2 steps → --out is an HF checkpoint that `lm generate --model` runs.
set(cmd "")
set(after_dashes FALSE)
math(EXPR last "${CMAKE_ARGC} - 1")
foreach(i RANGE ${last})
  if(after_dashes)
    list(APPEND cmd "${CMAKE_ARGV${i}}")
  elseif(CMAKE_ARGV${i} STREQUAL "--")
    set(after_dashes TRUE)
  endif()
endforeach()

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
set(data "${WORK}/data.jsonl")
file(WRITE "${data}" [=[
{"prompt": [1, 5, 17, 33], "completion": [40, 41, 42, 2]}
{"prompt": [1, 9, 12], "completion": [40, 41, 2]}
{"prompt": [1, 7, 7, 7, 7, 8], "completion": [50, 51, 52, 53, 2]}
{"prompt": [1, 60], "completion": [61, 62, 63, 2]}
{"prompt": [1, 20, 21, 22], "completion": [23, 2]}
{"prompt": [1, 30, 31], "completion": [32, 33, 34, 35, 36, 2]}
]=])

# run(<label> <out var> <err var> args...): runs the program, fails unless it exits 0.
function(run label out_var err_var)
  execute_process(COMMAND ${cmd} ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT status EQUAL 0)
    string(JOIN " " shown ${cmd} ${ARGN})
    message(FATAL_ERROR "${label}: ${shown}: exit status ${status}\nstdout: ${out}\nstderr: ${err}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
  set(${err_var} "${err}" PARENT_SCOPE)
endfunction()

set(lora_out "${WORK}/lora")
set(train_args lm train --model "${MODEL}" --data "${data}" --out "${lora_out}" --lora q,v --rank 4 --alpha 8
               --batch 2 --lr 0.01 --seed 3)
run("LoRA, 3 steps" out err ${train_args} --max-steps 3)
if(NOT out MATCHES "\"steps\":3[,}]")
  message(FATAL_ERROR "LoRA, 3 steps: stdout lacks \"steps\":3\nstdout: ${out}\nstderr: ${err}")
endif()
foreach(f adapter_model.safetensors adapter_config.json)
  if(NOT EXISTS "${lora_out}/${f}")
    message(FATAL_ERROR "LoRA: ${lora_out}/${f} was not written")
  endif()
endforeach()

string(REGEX MATCH "\"final_loss\":[^,}]*" first_loss "${out}")
run("the same command again" out err ${train_args} --max-steps 3)
if(NOT out MATCHES "\"resumed_from\":3[,}]" OR err MATCHES "step [0-9]+/")
  message(FATAL_ERROR "rerun: expected a resume at step 3 with no new step\nstdout: ${out}\nstderr: ${err}")
endif()
string(REGEX MATCH "\"final_loss\":[^,}]*" again_loss "${out}")
if(NOT again_loss STREQUAL first_loss)
  message(FATAL_ERROR "rerun: ${again_loss}, the first run reported ${first_loss}")
endif()

run("base logits" base err lm logits --model "${MODEL}" --ids 1,5,17)
run("adapter logits" adapted err lm logits --model "${MODEL}" --adapter "${lora_out}" --ids 1,5,17)
if(base STREQUAL adapted)
  message(FATAL_ERROR "the trained adapter leaves the logits unchanged")
endif()

run("generate with the adapter" out err lm generate --model "${MODEL}" --adapter "${lora_out}" --ids 1,5,17
    --max-new-tokens 4 --ignore-eos)
if(NOT out MATCHES "^\\{\"ids\":\\[[0-9]+,[0-9]+,[0-9]+,[0-9]+\\]\\}\n$")
  message(FATAL_ERROR "generate --adapter: stdout is not 4 ids: ${out}")
endif()

set(full_out "${WORK}/full")
run("full fine-tuning" out err lm train --model "${MODEL}" --data "${data}" --out "${full_out}" --full --max-steps 2
    --batch 3 --lr 0.001)
run("generate from the fine-tuned checkpoint" out err lm generate --model "${full_out}" --ids 1,5,17
    --max-new-tokens 4 --ignore-eos)
if(NOT out MATCHES "^\\{\"ids\":\\[[0-9]+,[0-9]+,[0-9]+,[0-9]+\\]\\}\n$")
  message(FATAL_ERROR "generate from ${full_out}: stdout is not 4 ids: ${out}")
endif()
message(STATUS "lm train: LoRA 3 steps, the rerun resumed at step 3, the adapter changes the logits and "
               "generates; full fine-tuning writes a checkpoint that generates")
