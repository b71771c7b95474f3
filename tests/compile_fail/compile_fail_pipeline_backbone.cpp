// Misuse: a recommender model where a pipeline backbone (sasrec_backbone<B>, gru4rec_backbone<B>) belongs.
#include <xsimd/xsimd.hpp>

#include "slim/backend/simd.hpp"
#include "slim/distill/oracle_teacher.hpp"
#include "slim/pipeline/slim_pipeline.hpp"

using cpu = slim::backend::simd<xsimd::sse2>;
using student = slim::nn::decoder_lm<cpu, slim::nn::lora<slim::nn::q_proj, slim::nn::v_proj>>;
using pipeline = slim::slim_pipeline<slim::distill::oracle_teacher, student, slim::rec::sasrec<cpu>>;
static_assert(sizeof(pipeline) > 0);
