// Misuse: a type that is not a Teacher (no teach()) as the pipeline's teacher.
#include <xsimd/xsimd.hpp>

#include "slim/backend/simd.hpp"
#include "slim/pipeline/slim_pipeline.hpp"

struct not_a_teacher {
  static constexpr const char* name = "nothing";
};
using cpu = slim::backend::simd<xsimd::sse2>;
using student = slim::nn::decoder_lm<cpu, slim::nn::lora<slim::nn::q_proj, slim::nn::v_proj>>;
using pipeline = slim::slim_pipeline<not_a_teacher, student, slim::pipeline::sasrec_backbone<cpu>>;
static_assert(sizeof(pipeline) > 0);
