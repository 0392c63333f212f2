// The backends' options as the command line and the environment set them: --precision,
// --deterministic and DPTRAIN_CUDNN_BN for CUDA, DPTRAIN_CPU_LAYOUT and the network for the CPU
// backend's activation layout (bad values are a usage error naming the variable).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "backend/cuda/device_probe.h"
#include "core/error.h"
#include "train/backend_choice.h"
#include "train/cpu_backend_setup.h"

namespace dp {
namespace {

TEST(CudaOptionsFromTheCommandLine, PrecisionAndDeterminism) {
  unsetenv("DPTRAIN_CUDNN_BN");
  const CudaOptions fp32 = cuda_options(Precision::fp32, false);
  EXPECT_FALSE(fp32.allow_tf32 || fp32.mixed_bf16 || fp32.deterministic);
  EXPECT_TRUE(fp32.benchmark_algorithms);
  EXPECT_TRUE(fp32.batchnorm_persistent) << "persistent batch norm is the default";
  EXPECT_TRUE(cuda_options(Precision::tf32, false).allow_tf32);
  const CudaOptions bf16 = cuda_options(Precision::bf16, true);
  EXPECT_TRUE(bf16.mixed_bf16 && bf16.deterministic);
  EXPECT_FALSE(bf16.benchmark_algorithms) << "deterministic runs take the heuristic choice";
  try {
    parse_enum_option<Precision>("precision", "fp16");
    ADD_FAILURE() << "--precision fp16 was accepted";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "option --precision: 'fp16' must be fp32, tf32 or bf16");
  }
}

TEST(CudaOptionsFromTheEnvironment, BatchNormMode) {
  setenv("DPTRAIN_CUDNN_BN", "persistent", 1);
  EXPECT_TRUE(cuda_options(Precision::bf16, false).batchnorm_persistent);
  setenv("DPTRAIN_CUDNN_BN", "spatial", 1);
  EXPECT_FALSE(cuda_options(Precision::bf16, false).batchnorm_persistent);
  setenv("DPTRAIN_CUDNN_BN", "", 1);
  EXPECT_TRUE(cuda_options(Precision::bf16, false).batchnorm_persistent);
  setenv("DPTRAIN_CUDNN_BN", "fast", 1);
  try {
    cuda_options(Precision::fp32, false);
    ADD_FAILURE() << "DPTRAIN_CUDNN_BN=fast was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("DPTRAIN_CUDNN_BN=fast"), std::string::npos) << e.what();
  }
  unsetenv("DPTRAIN_CUDNN_BN");
}

TEST(CpuLayoutChoice, FollowsTheNetworkUnlessTheEnvironmentSays) {
  unsetenv("DPTRAIN_CPU_LAYOUT");
  EXPECT_TRUE(cpu_blocked_activations("resnet20"));
  EXPECT_TRUE(cpu_blocked_activations("resnet18_cifar"));
  EXPECT_FALSE(cpu_blocked_activations("resnet50")) << "bottleneck blocks run faster NHWC";
  EXPECT_FALSE(cpu_blocked_activations("resnet50_cifar"));
  // bf16 convolutions: the layout oneDNN's bf16 kernels take on the CPU, for every network
  EXPECT_FALSE(cpu_blocked_activations("resnet20", true, Layout::nhwc)) << "AMX: NHWC";
  EXPECT_FALSE(cpu_blocked_activations("airbench94", true, Layout::nhwc));
  EXPECT_TRUE(cpu_blocked_activations("airbench94", true, Layout::nchw16c)) << "AVX512-BF16";
  EXPECT_TRUE(cpu_blocked_activations("resnet50", true, Layout::nchw16c));
  EXPECT_EQ(cpu_blocked_activations("resnet20", true),
            cpu_bf16_convolution_layout() == Layout::nchw16c);
  setenv("DPTRAIN_CPU_LAYOUT", "auto", 1);
  EXPECT_FALSE(cpu_blocked_activations("resnet50"));
  setenv("DPTRAIN_CPU_LAYOUT", "blocked", 1);
  EXPECT_TRUE(cpu_blocked_activations("resnet50"));
  setenv("DPTRAIN_CPU_LAYOUT", "nhwc", 1);
  EXPECT_FALSE(cpu_blocked_activations("resnet20"));
  setenv("DPTRAIN_CPU_LAYOUT", "nchw", 1);
  try {
    cpu_blocked_activations("resnet20");
    ADD_FAILURE() << "DPTRAIN_CPU_LAYOUT=nchw was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("DPTRAIN_CPU_LAYOUT=nchw"), std::string::npos) << e.what();
  }
  unsetenv("DPTRAIN_CPU_LAYOUT");

  // The choice reaches the backend.
  for (const char* arch : {"resnet20", "resnet50"}) {
    BackendChoice c = choose_backend(DeviceRequest::cpu, 1, 0, 1, {}, false, arch);
    EXPECT_EQ(c.backend->name().find("nChw16c") != std::string::npos,
              arch == std::string("resnet20"))
        << c.backend->name();
  }
}

// bf16 asked of a CPU without it runs fp32 under auto, so its layout is fp32's: the layout
// follows the bf16 decision choose_backend makes, not the option.
TEST(CpuLayoutChoice, FollowsWhetherBf16ConvolutionsReallyRun) {
  unsetenv("DPTRAIN_CPU_LAYOUT");
  if (probe_cuda().device_count > 0) GTEST_SKIP() << "a usable GPU would take --device auto";
  BackendChoice c = choose_backend(DeviceRequest::automatic, 1, 0, 1,
                                   cuda_options(Precision::bf16, false), false, "resnet20");
  ASSERT_EQ(c.backend->device(), Device::cpu) << c.reason;
  EXPECT_EQ(c.cpu_bf16, cpu_has_native_bf16()) << c.reason;
  const bool blocked = c.cpu_bf16 ? cpu_bf16_convolution_layout() == Layout::nchw16c : true;
  EXPECT_EQ(c.backend->name().find("nChw16c") != std::string::npos, blocked) << c.reason;
}

// Which networks get bf16 activations: airbench94 only (its every op has a bf16 kernel); a
// ResNet, or any other name, gets bf16 convolutions between f32 activations.
TEST(CpuBf16Choice, ActivationsForAirbenchConvolutionsForTheRest) {
  EXPECT_EQ(cpu_bf16_mode("airbench94", true), CpuBf16::activations);
  EXPECT_EQ(cpu_bf16_mode("resnet20", true), CpuBf16::convolutions);
  EXPECT_EQ(cpu_bf16_mode("resnet50", true), CpuBf16::convolutions);
  EXPECT_EQ(cpu_bf16_mode("a_future_net", true), CpuBf16::convolutions);
  EXPECT_EQ(cpu_bf16_mode("airbench94", false), CpuBf16::off);
  if (!cpu_has_native_bf16())
    GTEST_SKIP() << "this CPU has neither AVX512-BF16 nor AMX: no CPU backend in bf16 here";
  unsetenv("DPTRAIN_CPU_LAYOUT");
  const CudaOptions bf16 = cuda_options(Precision::bf16, false);
  BackendChoice resnet = choose_backend(DeviceRequest::cpu, 1, 0, 1, bf16, false, "resnet20");
  BackendChoice airbench = choose_backend(DeviceRequest::cpu, 1, 0, 1, bf16, false, "airbench94");
  EXPECT_TRUE(resnet.cpu_bf16 && airbench.cpu_bf16);
  const bool blocked = cpu_bf16_convolution_layout() == Layout::nchw16c;  // no AMX
  EXPECT_EQ(resnet.backend->name().find("nChw16c") != std::string::npos, blocked)
      << resnet.backend->name();
  EXPECT_EQ(airbench.backend->name().find("nChw16c") != std::string::npos, blocked)
      << airbench.backend->name();
  EXPECT_EQ(resnet.backend->activation_dtype(), DType::f32);
  EXPECT_EQ(airbench.backend->activation_dtype(), DType::bf16);
}

}  // namespace
}  // namespace dp
