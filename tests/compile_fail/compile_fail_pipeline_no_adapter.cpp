// Misuse: a student without a LoRA adapter (the undistilled control needs LoRA B = 0).
#include <xsimd/xsimd.hpp>

#include "slim/backend/simd.hpp"
#include "slim/distill/oracle_teacher.hpp"
#include "slim/pipeline/slim_pipeline.hpp"

using cpu = slim::backend::simd<xsimd::sse2>;
using student = slim::nn::decoder_lm<cpu>;
using pipeline = slim::slim_pipeline<slim::distill::oracle_teacher, student, slim::pipeline::sasrec_backbone<cpu>>;
static_assert(sizeof(pipeline) > 0);
